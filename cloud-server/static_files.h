// What the cloud's static file handler (server.cpp) decides about a dashboard file without
// touching a socket: whether the browser's Accept-Encoding allows the file's gzip variant,
// the validator (ETag) of each variant, and the media types libwebsockets does not know.
// Pure functions; any thread.
#pragma once

#include <sys/stat.h>

#include <string>
#include <string_view>

namespace flatlink::cloud {

// Whether an Accept-Encoding value (RFC 9110 12.5.3) allows gzip: a `gzip` or `x-gzip`
// entry with a q-value above 0 or, when no entry names gzip, a `*` with one. Codings are
// matched without regard to case; `q=0`, `q=0.0`, `q=0.000` refuse; an entry whose q-value
// is not a number is ignored. An empty value allows nothing but identity.
bool accepts_gzip(std::string_view accept_encoding);

// A file's validator: its size and modification time (ns), in hex: "1a2b-17f…". The gzip
// variant's carries "-gzip" after the .gz file's own, so that the two never validate each other.
std::string file_etag(const struct stat& st);
std::string gzip_etag(const struct stat& gz);

// The media type of a file by its name's ending for the types libwebsockets' table lacks
// (.webmanifest, .mjs); null for every other (the caller asks lws_get_mimetype).
const char* extra_media_type(std::string_view path);

}  // namespace flatlink::cloud
