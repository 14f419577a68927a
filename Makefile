# tend: the two commands of the README, and the pieces they are made of.
#   make demo   installs what is missing, builds, plans and applies the bundled example into a scratch root
#   make test   installs what is missing, builds and runs every test
#   make deb    builds .build/deb/tend_VERSION_amd64.deb (static Swift runtime, man pages, completions, units)
#   make image IMAGE=DIR  builds a bootable Debian 12 root in DIR from examples/provisioning (scripts/make-image.sh)
#   make bench  runs the benchmarks in bench/ (results go to bench/RESULTS.md by hand)
#   make torture  kill -9s 1,000 applies and counts what broke (bench/RELIABILITY.md)
#   make fuzz   fuzzes the configuration loader with libFuzzer for FUZZ_SECONDS (default 600)

SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)

SWIFT_BUILD_FLAGS ?=

.PHONY: deps build release deb image demo test bench torture fuzz clean

# Debian packages tend builds and tests with (scripts/install-deps.sh lists them).
deps:
	@scripts/install-deps.sh

build: deps
	swift build $(SWIFT_BUILD_FLAGS)

release: deps
	swift build -c release $(SWIFT_BUILD_FLAGS)

# The Debian package (scripts/build-deb.sh), checked by lintian when it is installed. The man pages
# come from the debug build.
deb: build
	@deb=$$(scripts/build-deb.sh); echo "Built $$deb"; \
	if command -v lintian >/dev/null; then lintian --fail-on error,warning --suppress-tags-from-file scripts/deb/lintian-kept "$$deb"; fi

# A Debian 12 root that boots into a tend-managed machine: debootstrap (cached in
# /var/cache/tend-image), then tend apply --root DIR of examples/provisioning with the .deb.
# REPO=, IMAGE_HOSTNAME=, IMAGE_ROLE= and DEPLOY_KEY= are passed on (scripts/make-image.sh).
image: deb
	@test -n "$(IMAGE)" || { echo "make image IMAGE=DIR: DIR is where the root is built" >&2; exit 1; }
	TEND=$$(swift build --show-bin-path)/tend scripts/make-image.sh "$(IMAGE)" .build/deb/tend_$$(cat .build/deb/version)_amd64.deb

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
	echo; echo "# What tend recorded (in the root's own /var/lib/tend):"; \
	echo "\$$ tend status --root $$root"; $$tend status --root $$root; \
	echo; echo "\$$ tend blame /etc/motd --root $$root"; $$tend blame /etc/motd --root $$root; \
	echo; echo "The converged root is $$root:"; find $$root -mindepth 1 | sort | sed "s|^$$root||"

# The tests install the .deb on a test host, so the package is built (and checked by lintian) first.
test: deb
	swift build --build-tests $(SWIFT_BUILD_FLAGS)
	swift test --skip-build $(SWIFT_BUILD_FLAGS)

bench: release
	bench/run.sh

torture: release
	python3 bench/torture.py $$(swift build -c release --show-bin-path)/tend --kills $(KILLS) --files $(FILES)

KILLS ?= 1000
FILES ?= 2000
FUZZ_SECONDS ?= 600
FUZZ_BUILD := .build-fuzz

# libFuzzer and AddressSanitizer over tend.yaml, manifests and templates (Tests/Fuzz). The corpus
# grows in $(FUZZ_BUILD)/corpus from the seeds: the examples and the malformed-input corpus.
fuzz: deps
	swift build --scratch-path $(FUZZ_BUILD) --product tend-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -DTEND_FUZZING
	mkdir -p $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/seeds $(FUZZ_BUILD)/crashes
	find examples Tests/TendIntegrationTests/Corpus -type f \( -name '*.yaml' -o -name '*.mustache' -o -name '*.service' \) -size -64k \
		| while read -r f; do cp "$$f" "$(FUZZ_BUILD)/seeds/$$(echo "$$f" | tr / _)"; done
	$(FUZZ_BUILD)/debug/tend-fuzz $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/seeds -max_total_time=$(FUZZ_SECONDS) -timeout=20 \
		-rss_limit_mb=4096 -max_len=65536 -artifact_prefix=$(FUZZ_BUILD)/crashes/ -print_final_stats=1

clean:
	rm -rf .build $(FUZZ_BUILD)
