// UTF-8 well-formedness, once for the project: the log's escaping (log.cpp) and the
// adapters' checks of device text (adapter_base, serial's line protocol) use it.
#pragma once

#include <cstddef>
#include <string_view>

namespace flatlink::utf8 {

// Length of the well-formed UTF-8 sequence at text[i] (1 to 4), or 0 when the bytes there
// are not one (overlong forms, surrogates and code points past U+10FFFF included).
size_t sequence_length(std::string_view text, size_t i);
// True when all of text is well-formed UTF-8.
bool valid(std::string_view text);

}  // namespace flatlink::utf8
