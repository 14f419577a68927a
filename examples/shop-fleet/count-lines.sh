#!/bin/sh
# Lines of the shop fleet as tend configuration and as the same fleet in Ansible (ansible/):
# non-blank lines that are not comments (first non-space character '#'), for (a) configuration
# only (YAML) and (b) configuration plus templates (.mustache for tend, .j2 for Ansible).
# certs/, keys/ and README files are not counted; ansible/ is not part of tend's count.
set -eu
cd "$(dirname "$0")"

# count FIND-ARGS...: the lines of the files that find lists
count() {
    find "$@" -type f -print | awk '
        { while ((getline line < $0) > 0) if (line !~ /^[ \t\r]*$/ && line !~ /^[ \t\r]*#/) n++
          close($0) }
        END { print n + 0 }'
}

tend_yaml=$(count . \( -path ./ansible -o -path ./certs -o -path ./keys \) -prune -o -name '*.yaml')
tend_tmpl=$(count . \( -path ./ansible -o -path ./certs -o -path ./keys \) -prune -o -name '*.mustache')
ans_yaml=$(count ansible \( -name '*.yml' -o -name '*.yaml' \))
ans_tmpl=$(count ansible -name '*.j2')

awk -v ty="$tend_yaml" -v tt="$tend_tmpl" -v ay="$ans_yaml" -v at="$ans_tmpl" 'BEGIN {
    printf "%-28s %6s %8s %13s\n", "", "tend", "ansible", "tend/ansible"
    printf "%-28s %6d %8d %13.2f\n", "(a) configuration (YAML)", ty, ay, ty / ay
    printf "%-28s %6d %8d %13.2f\n", "(b) configuration+templates", ty + tt, ay + at, (ty + tt) / (ay + at)
}'
