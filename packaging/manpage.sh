#!/bin/sh
# Writes a program's manual page (section 8, gzip -9n) from its own --help and --version,
# at build time, so that the page says what the binary does:
#   packaging/manpage.sh OUT.8.gz NAME PACKAGE "one-line summary" [EMULATOR...] BINARY
# A cross build passes its emulator (qemu-aarch64-static -L /) before the binary.
set -eu
out=$1 name=$2 package=$3 summary=$4
shift 4
help=$("$@" --help)
version=$("$@" --version | head -n 1)
# roff: a backslash is \e, a line starting with . or ' is protected by \&.
escape() { sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"; }
tmp="$out.tmp"
{
  printf '.TH %s 8 "" "%s" "flatlink"\n' "$(echo "$name" | tr a-z A-Z)" "$version"
  printf '.SH NAME\n%s \\- %s\n' "$name" "$summary"
  printf '.SH DESCRIPTION\n.nf\n'
  printf '%s\n' "$help" | escape
  printf '.fi\n'
  printf '.SH FILES\n.TP\n/etc/flatlink/\nthe configuration (created from /usr/share/flatlink/examples/ on first install)\n'
  printf '.SH SEE ALSO\n.BR systemctl (1),\n.BR journalctl (1);\n/usr/share/doc/%s/operations.md\n' "$package"
} >"$tmp"
gzip -9n <"$tmp" >"$out"
rm -f "$tmp"
