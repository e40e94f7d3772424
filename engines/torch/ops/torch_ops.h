#ifndef VOX_ENGINES_TORCH_OPS_TORCH_OPS_H_
#define VOX_ENGINES_TORCH_OPS_TORCH_OPS_H_

// libvox_torch_ops: vox's own TorchScript operators (vox::linear, for int8, bfloat16 and float32
// weights on CPU; vox::attend and vox::cache_attend). They register with LibTorch when the library
// loads, before any model does; models exported with compressed weights, and NLLB float32 exports
// from exporter version 4, need them. Thread-safe.

namespace vox {

// The kernels vox::linear runs on this CPU (e.g. "avx2"), for start-up reports.
const char* TorchOpsKernel();

}  // namespace vox

#endif  // VOX_ENGINES_TORCH_OPS_TORCH_OPS_H_
