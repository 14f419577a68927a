#!/usr/bin/env bash
# Builds tend_VERSION_amd64.deb in .build/deb/ (make deb): a release build with the Swift standard
# library, Foundation and Dispatch linked in (--static-swift-stdlib), so the host needs no Swift
# toolchain, only Debian's libgit2, libyaml and libsystemd. It holds the binary, its man pages
# (generated from the commands by swift-argument-parser's generate-manual plugin, plus
# docs/tend.yaml.5), bash, zsh and fish completions (from the same parser), the units of
# examples/systemd and /etc/tend/agent.yaml as a conffile. Prints the path of the .deb.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(scripts/version.sh)
out=.build/deb
stage=$out/tend_${version}_amd64
rm -rf "$out" && mkdir -p "$stage"

echo "Building tend $version (release, Swift runtime linked statically)..." >&2
swift build -c release --product tend --static-swift-stdlib >&2
binary=$(swift build -c release --show-bin-path)/tend

# The man pages come from the commands themselves. Their text does not depend on the build's
# configuration, so the debug build `make test` already has serves.
echo "Generating man pages..." >&2
commit_date=$(git log -1 --format=%cs 2>/dev/null || date -u +%F)
swift package generate-manual --configuration debug --multi-page --date "$commit_date" \
    --authors "The tend developers" >&2
manuals=.build/plugins/GenerateManual/outputs/tend

install -d -m 0755 "$stage"/DEBIAN "$stage"/usr/bin "$stage"/usr/share/man/man1 "$stage"/usr/share/man/man5 \
    "$stage"/usr/share/doc/tend/examples "$stage"/lib/systemd/system "$stage"/etc/tend \
    "$stage"/usr/share/bash-completion/completions "$stage"/usr/share/zsh/vendor-completions \
    "$stage"/usr/share/fish/vendor_completions.d
install -m 0755 "$binary" "$stage"/usr/bin/tend
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage"/usr/bin/tend

# tend.apply.1 becomes tend-apply.1, as git-commit(1) is named: `man tend-apply`, whose NAME says
# tend-apply (for whatis and apropos) and whose SYNOPSIS says `tend apply`. Blank lines of the
# commands' discussions become paragraph breaks. The help subcommand's page says nothing --help
# does not.
for page in "$manuals"/tend*.1; do
    name=$(basename "$page" .1)
    [ "$name" = tend.help ] && continue
    command=${name/./ }
    sed -e 's/^\.Dt TEND\.\([A-Z]*\) 1$/.Dt TEND-\1 1/' -e 's/^\.Xr tend\.\([a-z]*\) 1/.Xr tend-\1 1/' \
        -e '/^\.Xr tend-help 1 ,\{0,1\}$/d' -e 's/^$/.Pp/' \
        -e "0,/^\\.Nm \"$command\"\$/s//.Nm ${name/./-}/" -e "s/^\\.Nm\$/.Nm \"$command\"/" \
        "$page" | gzip -9n > "$stage/usr/share/man/man1/${name/./-}.1.gz"
done
gzip -9n < docs/tend.yaml.5 > "$stage"/usr/share/man/man5/tend.yaml.5.gz

# bash-completion sources the file: no #! line.
"$binary" --generate-completion-script bash | sed '1{/^#!/d}' > "$stage"/usr/share/bash-completion/completions/tend
"$binary" --generate-completion-script zsh > "$stage"/usr/share/zsh/vendor-completions/_tend
"$binary" --generate-completion-script fish > "$stage"/usr/share/fish/vendor_completions.d/tend.fish
chmod 0644 "$stage"/usr/share/*/completions/tend "$stage"/usr/share/zsh/vendor-completions/_tend "$stage"/usr/share/fish/vendor_completions.d/tend.fish

install -m 0644 examples/systemd/tend.service examples/systemd/tend-apply.service examples/systemd/tend-apply.timer \
    examples/systemd/tend-snapshot.service examples/systemd/tend-snapshot.timer "$stage"/lib/systemd/system/
install -m 0644 examples/systemd/agent.yaml "$stage"/etc/tend/agent.yaml
install -m 0644 scripts/deb/copyright "$stage"/usr/share/doc/tend/copyright
for example in examples/*/; do
    [ "$example" = examples/systemd/ ] || cp -r "$example" "$stage"/usr/share/doc/tend/examples/
done
find "$stage"/usr/share/doc/tend/examples -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
{
    echo "tend ($version) unstable; urgency=medium"
    echo
    echo "  * Built from $(git rev-parse --short=12 HEAD 2>/dev/null || echo 'a source tree') of the tend repository."
    echo
    echo " -- The tend developers <tend@tend.dev>  $(git log -1 --format=%cD 2>/dev/null || date -R)"
} | gzip -9n > "$stage"/usr/share/doc/tend/changelog.gz

# The libraries it links, with the versions they need, as Debian's own packages name them.
shlibs=$(mktemp -d) && mkdir "$shlibs/debian"
printf 'Source: tend\n\nPackage: tend\nArchitecture: any\n' > "$shlibs/debian/control"
depends=$(cd "$shlibs" && dpkg-shlibdeps -O "$OLDPWD/$stage/usr/bin/tend" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
rm -rf "$shlibs"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" scripts/deb/control > "$stage"/DEBIAN/control
echo /etc/tend/agent.yaml > "$stage"/DEBIAN/conffiles
install -m 0755 scripts/deb/postinst scripts/deb/prerm scripts/deb/postrm "$stage"/DEBIAN/
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort | xargs md5sum) > "$stage"/DEBIAN/md5sums
chmod 0644 "$stage"/DEBIAN/md5sums "$stage"/DEBIAN/control "$stage"/DEBIAN/conffiles

echo "$version" > "$out/version"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out/tend_${version}_amd64.deb" >&2
echo "$out/tend_${version}_amd64.deb"
