#ifndef VOX_ENGINES_BUILTIN_APERTIUM_TEXT_H_
#define VOX_ENGINES_BUILTIN_APERTIUM_TEXT_H_

#include <string>
#include <string_view>

namespace vox {

// Plain text ⇄ Apertium stream format, as Debian's `apertium-destxt` / `apertium-retxt` do it for
// one piece of text (apertium 3.8). Pure functions; thread-safe.

// Escapes `text` the way `apertium-destxt` does: a backslash before each of  $ / < > @ [ \ ] ^ { },
// '~' wrapped as the superblank "[~]", a single space kept, any other run of spaces, tabs, CRs and
// newlines wrapped whole as a superblank "[...]", and the end-of-text mark ".[]" appended (the
// pipeline then sees a sentence end; FromApertiumStream removes it). Trailing whitespace of
// `text` goes after the end mark, as destxt puts it.
std::string ToApertiumStream(std::string_view text);

// Turns a pipeline's output back into text the way `apertium-retxt` does: ".[]" and "[]" removed,
// superblanks replaced by their contents, backslash escapes undone.
std::string FromApertiumStream(std::string_view stream);

}  // namespace vox

#endif  // VOX_ENGINES_BUILTIN_APERTIUM_TEXT_H_
