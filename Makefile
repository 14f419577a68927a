# tend: the two commands of the README, and the pieces they are made of.
#   make demo   installs what is missing, builds, plans and applies the bundled example into a scratch root
#   make test   installs what is missing, builds and runs every test
#   make bench  runs the benchmarks in bench/ (results go to bench/RESULTS.md by hand)

SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)

SWIFT_BUILD_FLAGS ?=

.PHONY: deps build release demo test bench clean

# Debian packages tend builds and tests with (scripts/install-deps.sh lists them).
deps:
	@scripts/install-deps.sh

build: deps
	swift build $(SWIFT_BUILD_FLAGS)

release: deps
	swift build -c release $(SWIFT_BUILD_FLAGS)

# The demo: a scratch root with its own /etc/passwd (so owners resolve there), the web host example
# planned, applied, then planned again to show that nothing is left to do.
demo: build
	@set -e; tend=$$(swift build --show-bin-path)/tend; \
	root=$$(mktemp -d /tmp/tend-demo.XXXXXX); mkdir -p $$root/etc; \
	printf 'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n' > $$root/etc/passwd; \
	printf 'root:x:0:\nwww-data:x:33:\n' > $$root/etc/group; \
	echo; echo "\$$ tend validate examples/webhost --hostname demo"; $$tend validate examples/webhost --hostname demo; \
	echo; echo "\$$ tend plan examples/webhost --hostname demo --root $$root"; $$tend plan examples/webhost --hostname demo --root $$root; \
	echo; echo "\$$ tend apply examples/webhost --hostname demo --root $$root"; $$tend apply examples/webhost --hostname demo --root $$root; \
	echo; echo "\$$ tend plan examples/webhost --hostname demo --root $$root --detailed-exitcode"; $$tend plan examples/webhost --hostname demo --root $$root --detailed-exitcode; \
	echo; echo "# Someone edits a managed file and removes a link by hand:"; echo "edited by hand" >> $$root/etc/motd; rm $$root/etc/nginx/sites-enabled/app.conf; \
	echo "\$$ tend plan examples/webhost --hostname demo --root $$root"; $$tend plan examples/webhost --hostname demo --root $$root; \
	echo "\$$ tend apply examples/webhost --hostname demo --root $$root"; $$tend apply examples/webhost --hostname demo --root $$root; \
	echo; echo "The converged root is $$root:"; find $$root -mindepth 1 | sort | sed "s|^$$root||"

test: deps
	swift build --build-tests $(SWIFT_BUILD_FLAGS)
	swift test --skip-build $(SWIFT_BUILD_FLAGS)

bench: release
	bench/run.sh

clean:
	rm -rf .build
