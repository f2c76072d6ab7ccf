// A cheap scan of JSON text before parsing it: whether objects/arrays nest deeper than
// max_depth. Brackets inside strings do not count. On malformed text the count may be off,
// but the parser refuses that text. Used by every parser of outside JSON (wire protocol,
// streams, backplane, serial lines) so that deep nesting is refused without building (and
// later dumping or destroying) a deep tree.
#pragma once

#include <string_view>

namespace flatlink {

bool nested_deeper_than(std::string_view text, int max_depth);

}  // namespace flatlink
