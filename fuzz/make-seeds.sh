#!/usr/bin/env bash
# Regenerates fuzz/seeds/ from tests/fixtures/*.xml. The seeds are committed;
# run this again after adding or changing a fixture.
#
#   seeds/config_xml_read/<fixture>.xml    the fixture as it is
#   seeds/config_xml_edit/<fixture>.xml    the fixture with no operations
#   seeds/config_xml_edit/<fixture>.<ops>  the fixture, NUL, then operations
#
# Edit-input format (see split_edit_input in fuzz/src/lib.rs):
#   FILE \0 OP \0 OP ...   OP = kind byte + body;
#   kind `s` = Set, `p` = Set marked sensitive, `u` = Unset (body = name);
#   a Set's body is NAME \x1f VALUE.
set -euo pipefail
fuzz_dir=$(cd "$(dirname "$0")" && pwd)
fixtures="$fuzz_dir/../tests/fixtures"
read_dir="$fuzz_dir/seeds/config_xml_read"
edit_dir="$fuzz_dir/seeds/config_xml_edit"
rm -rf "$read_dir" "$edit_dir"
mkdir -p "$read_dir" "$edit_dir"

# Operation sets, each written as a printf format of its operations.
declare -A operations=(
  # Rotate the instance credentials (the value needs escaping).
  [rotate]='\0p%s\x1f%s\0s%s\x1f%s'
  # Add new parameters, one of them a password (gets secure="true").
  [add]='\0s%s\x1f%s\0p%s\x1f%s'
  # Remove parameters the MID writes itself, and one that is absent.
  [unset]='\0u%s\0u%s\0u%s'
  # A mix: update, remove, add under the alias spelling.
  [mixed]='\0s%s\x1f%s\0u%s\0p%s\x1f%s'
)
for fixture in "$fixtures"/*.xml; do
  base=$(basename "$fixture" .xml)
  cp "$fixture" "$read_dir/$base.xml"
  cp "$fixture" "$edit_dir/$base.xml"
  { cat "$fixture"; printf "${operations[rotate]}" \
      mid.instance.password "N3w&P<a>ss\"'"$'\t'"end" mid.instance.username svc_mid_new; } \
    >"$edit_dir/$base.rotate"
  { cat "$fixture"; printf "${operations[add]}" \
      mid.proxy.host proxy.example.com mid.proxy.password 'pr0xy"pw'; } \
    >"$edit_dir/$base.add"
  { cat "$fixture"; printf "${operations[unset]}" \
      keypairs.mid_id mid_sys_id mid.not.there; } \
    >"$edit_dir/$base.unset"
  { cat "$fixture"; printf "${operations[mixed]}" \
      url 'https://other.service-now.com/?a=1&b=2' name glide.glidesoap.password 'p&w'; } \
    >"$edit_dir/$base.mixed"
done
echo "seeds: $(ls "$read_dir" | wc -l) read, $(ls "$edit_dir" | wc -l) edit"
