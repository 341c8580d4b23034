#!/usr/bin/env bash
# Regenerates fuzz/seeds/ from tests/fixtures/, inventory/ and playbooks/.
# The seeds are committed; run this again after adding or changing a
# fixture, an example inventory or playbook.
#
#   seeds/config_xml_read/<fixture>.xml    the fixture as it is
#   seeds/config_xml_edit/<fixture>.xml    the fixture with no operations
#   seeds/config_xml_edit/<fixture>.<ops>  the fixture, NUL, then operations
#   seeds/inventory_load/<name>.<kind>     KIND byte + inventory file
#                                          (+ NUL + host pattern)
#   seeds/playbook_load/<name>.yml         a playbook as it is
#   seeds/facts_parse/<name>.reply         a real facts-script reply, and
#                                          full.cut-*: one cut short
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

# Inventories. Input layout (split_inventory_input in fuzz/src/lib.rs): one
# byte picking the file name, `y` = inventory.yml, `i` = hosts.ini, any
# other = hosts (format sniffed, as Ansible does); then the file; then
# optionally NUL and a host pattern. Each file goes in as its own kind and
# sniffed, and once with the pattern of the playbook that uses it.
repo="$fuzz_dir/.."
inventory_dir="$fuzz_dir/seeds/inventory_load"
rm -rf "$inventory_dir"
mkdir -p "$inventory_dir"
inventory_seed() { # NAME KIND FILE [PATTERN]
  { printf '%s' "$2"; cat "$3"; if [ $# -gt 3 ]; then printf '\0%s' "$4"; fi; } \
    >"$inventory_dir/$1.$2"
}
inventory_seed example y "$repo/inventory/example.yml" 'all:!lab'
inventory_seed example h "$repo/inventory/example.yml"
inventory_seed ansible-yaml y "$repo/tests/fixtures/inventories/ansible-yaml/inventory.yml" 'emea:lab'
inventory_seed ansible-yaml h "$repo/tests/fixtures/inventories/ansible-yaml/inventory.yml"
inventory_seed ansible-ini i "$repo/tests/fixtures/inventories/ansible-ini/hosts" 'europe:&emea:!mid-emea-03'
inventory_seed ansible-ini h "$repo/tests/fixtures/inventories/ansible-ini/hosts"
inventory_seed broken y "$repo/tests/fixtures/inventories/broken/inventory.yml" 'emae:amer'
inventory_seed broken-syntax y "$repo/tests/fixtures/inventories/broken/syntax.yml"
for vars in "$repo"/tests/fixtures/inventories/ansible-ini/group_vars/*.yml \
  "$repo"/tests/fixtures/inventories/ansible-ini/group_vars/*/*.yml; do
  # Variables files: a mapping of variables, not of groups.
  name=$(echo "${vars#*group_vars/}" | tr / -)
  inventory_seed "group-vars-${name%.yml}" y "$vars"
done
# The INI shape's corners: hosts before any section, letter ranges with a
# step, [group:vars] typing and quoting, comments, ProxyJump in ssh args,
# service commands, a template, Windows line ends.
extra=$(mktemp)
trap 'rm -f "$extra"' EXIT
cat >"$extra" <<'INI'
mid-lab-01 ansible_host=127.0.0.1 ansible_port=2201   # ungrouped
; a comment
[emea]
mid-emea-[01:09:2] mid_name="emea {{ inventory_hostname[-2:] }}"
db-[a:f].example.com ansible_become=no
[emea:vars]
ansible_user='ops'
connect_timeout=30
ansible_ssh_common_args=-o ProxyJump=ops@bastion:2222,jump2
mid_service=commands
mid_home=/opt/servicenow/mid/
[europe:children]
emea
[europe:vars]
mid_cluster=eu
INI
inventory_seed extra-ini i "$extra" 'europe:!db-*'
printf '[amer]\r\nmid-amer-01 jump=ops@b1,ops@b2:2022\r\n[amer:vars]\r\nmid_service=systemd:mid\r\n' >"$extra"
inventory_seed extra-crlf i "$extra" 'amer,mid-amer-0?'
cat >"$extra" <<'YAML'
all:
  vars: &common { ansible_user: ops, ansible_timeout: 20 }
  hosts:
    mid-solo: { <<: *common, mid_config: "{{ mid_home }}/agent/config.xml" }
  children:
    apac:
      vars: { mid_service: { start: "x start", stop: "x stop", status: "x status" } }
      hosts:
        mid-apac-[1:3]:
          ansible_ssh_extra_args: "-J ops@bastion-apac"
          identity_file: ~/.ssh/apac
    ungrouped:
YAML
inventory_seed extra-yaml y "$extra" 'apac:&mid-apac-2,mid-solo'

# Playbooks: each as written.
playbook_dir="$fuzz_dir/seeds/playbook_load"
rm -rf "$playbook_dir"
mkdir -p "$playbook_dir"
cp "$repo/playbooks/rotate-user.yml" "$playbook_dir/rotate-user.yml"
cp "$repo/tests/fixtures/inventories/rotate.yml" "$playbook_dir/rotate.yml"
cp "$repo/tests/fixtures/inventories/undefined-variable.yml" "$playbook_dir/undefined-variable.yml"
cp "$repo/tests/fixtures/inventories/broken/playbook.yml" "$playbook_dir/broken.yml"
# Every section and secret scheme, and templates that work, loop and fail.
cat >"$playbook_dir/extra-sections.yml" <<'YAML'
name: "Every section"
hosts: [emea, "mid-lab-*"]
set:
  url: "https://{{ instance }}.service-now.com/"
  mid.proxy.host: "{{ proxy.host }}"
  mid.proxy.port: "{{ proxy.port | int + 1 }}"
  name: "{% for g in group_names %}{{ g | upper }}{% if not loop.last %}-{% endif %}{% endfor %}"
  mid.instance.username: svc_{{ mid_name }}
  glide.glidesoap.password: { secret: "file:/run/secrets/{{ mid_name }}" }
  mid.secret.a: { secret: "command:pass show mid" }
  mid.secret.b: { secret: "prompt:MID password" }
  mid.flag: yes
unset:
  - mid.proxy.use_proxy
  - mid.instance.password
restart: always
health: { timeout: 86400 }
rollout: { serial: 10%, max_fail: 25% }
YAML
cat >"$playbook_dir/extra-templates.yml" <<'YAML'
hosts: all
set:
  a: "{{ 'x' * 70000 }}"
  b: "{% for i in range(100000) %}{{ i }}{% endfor %}"
  c: "{{ undefined_thing | default('d') }}"
  d: "{{ ports | join(',') }}{# a comment #}"
  e: "{{ \"\\u0001\" }}"
YAML

# Facts replies: the script run by the local sh (see
# examples/facts_replies.rs), then cut short.
facts_dir="$fuzz_dir/seeds/facts_parse"
rm -rf "$facts_dir"
cargo run --quiet --manifest-path "$fuzz_dir/Cargo.toml" --example facts_replies -- "$facts_dir"

echo "seeds: $(ls "$read_dir" | wc -l) read, $(ls "$edit_dir" | wc -l) edit," \
  "$(ls "$inventory_dir" | wc -l) inventory, $(ls "$playbook_dir" | wc -l) playbook," \
  "$(ls "$facts_dir" | wc -l) facts"
