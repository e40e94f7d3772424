// Linked into the voxd executable only: a floor under explicitly requested thread stack sizes.
//
// glibc places every thread's static TLS block at the top of its stack, and pthread_create
// fails with EINVAL when the requested stack cannot hold it. voxd's libraries bring about 106 KiB
// of static TLS (OpenBLAS 60 KiB, glog 30 KiB, LibTorch, ...), while civetweb, under
// prometheus-cpp's Exposer, asks for 100 KiB stacks (its build's USE_STACK_SIZE): every worker
// fails ("Cannot create threads") and --metrics-listen could not start. Threads that keep the
// default stack (8 MiB) are unaffected.
//
// The executable's definition comes first in the dynamic linker's search order, so civetweb's
// call lands here; this raises sizes below 1 MiB to 1 MiB (address space only: pages are
// committed as they are touched) and hands over to glibc.
#include <dlfcn.h>
#include <pthread.h>

#include <cstddef>

extern "C" int pthread_attr_setstacksize(pthread_attr_t* attr, size_t size) {
  using Fn = int (*)(pthread_attr_t*, size_t);
  static const Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "pthread_attr_setstacksize"));
  constexpr size_t kFloor = size_t{1} << 20;
  return real(attr, size < kFloor ? kFloor : size);
}
