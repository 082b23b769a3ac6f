# Cairn's tasks. `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]

export DUP3 := env_var_or_default("DUP3", "/opt/duplicity3/bin/duplicity")

# Build the release binary.
build:
    cargo build --release

# The appliance itself on this machine: `cairn serve` with a simulated board and a ready
# target (an rsync daemon on loopback) on http://127.0.0.1:8080/ (or PORT); prints the claim code.
appliance:
    scripts/appliance

# Back up DIR (default: src/) to a file:// target, encrypted, then an
# incremental; restore with Cairn and with stock duplicity and compare both with DIR.
demo dir="src":
    scripts/demo {{dir}}

# Every test: formatting, lints, unit and integration tests.
test: lint
    cargo test --all-targets
    just test-tor
    just test-aarch64
    just cross-check armv7
    just boot-test

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings

# Release binary for a Raspberry Pi, no containers: `just cross aarch64` (64-bit) or `just cross armv7` (32-bit).
cross arch="aarch64":
    #!/usr/bin/env bash
    set -euo pipefail
    case "{{arch}}" in
      aarch64|arm64) triple=aarch64-unknown-linux-gnu ;;
      armv7|armhf) triple=armv7-unknown-linux-gnueabihf ;;
      *) echo "just cross: unknown arch '{{arch}}' (aarch64 or armv7)" >&2; exit 2 ;;
    esac
    cargo build --release --locked --target "$triple" --bin cairn
    bin=${CARGO_TARGET_DIR:-target}/$triple/release/cairn
    echo "$bin: $(stat -c %s "$bin") bytes"

# That the binary compiles and links for a Pi (`armv7` by default), unoptimised (profile
# `cross-check`), so CI's build check takes half the time of an optimised build.
cross-check arch="armv7":
    #!/usr/bin/env bash
    set -euo pipefail
    case "{{arch}}" in
      aarch64|arm64) triple=aarch64-unknown-linux-gnu ;;
      armv7|armhf) triple=armv7-unknown-linux-gnueabihf ;;
      *) echo "just cross-check: unknown arch '{{arch}}' (aarch64 or armv7)" >&2; exit 2 ;;
    esac
    cargo build --profile cross-check --locked --target "$triple" --bin cairn
    bin=${CARGO_TARGET_DIR:-target}/$triple/cross-check/cairn
    file "$bin" | grep -q ARM || { echo "$bin is not an ARM binary" >&2; exit 1; }
    echo "$bin: $(stat -c %s "$bin") bytes"

# The library's unit tests, built for aarch64 as the image's binary is (release, feature tor, and
# image/build's SOURCE_DATE_EPOCH, which the C dependencies' build scripts track), so the image
# build reuses every dependency; run under qemu-user, one test at a time (a test that spawns a
# process while other test threads run can deadlock in qemu-user's fork emulation; seen once).
# Twice: on qemu's CPU, which has the ARMv8 AES/SHA instructions (a Pi 5), and with them hidden
# from the run-time detection by cross/no-crypto-hwcap.c (a Pi 4 or 3, whose SoCs lack them).
test-aarch64:
    #!/usr/bin/env bash
    set -euo pipefail
    export SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
    tests() { cargo test --release --locked --lib --features tor --target aarch64-unknown-linux-gnu -- --test-threads=1; }
    echo "== aarch64 with the crypto extensions"
    CAIRN_EXPECT_AES=1 tests
    so=$(realpath "${CARGO_TARGET_DIR:-target}")/no-crypto-hwcap.so
    aarch64-linux-gnu-gcc -shared -fPIC -O2 -o "$so" cross/no-crypto-hwcap.c -ldl
    echo "== aarch64 without the crypto extensions"
    CAIRN_EXPECT_AES=0 CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_PRELOAD=$so" tests

# The Raspberry Pi SD image: out/cairn-<version>-arm64.img (+ .img.xz). As root.
image:
    image/build

# Build the image and boot it under QEMU (machines virt and raspi3b). As root; minutes.
boot-test:
    cargo test --test image -- --ignored --nocapture --test-threads=1

# Remote targets over Tor with the embedded client (cargo feature `tor`), including the
# private-Tor-network tier: 3 authorities, 2 relays, an onion service, about 1-3 minutes.
test-tor:
    cargo test --features tor --test backend_tor -- --include-ignored --nocapture --test-threads=1

# Cairn next to duplicity 0.8, borg, restic, tar|gpg and rdiff on a 618 MB tree, one run:
# wall time, peak RSS and ratios. `just bench --quick` (a 10x smaller tree), `just bench --memory`
# (adds a 4 GiB file and 200,000 files). Installs borg and restic from Debian first.
bench *args:
    scripts/setup-bench
    cargo fetch --locked
    cargo bench --bench compare -- {{args}}

# Full backups through a rate-limited relay (1 and 8 MB/s) in front of an rsync daemon: Cairn
# sending a volume while it encodes the next, Cairn without that (--concurrency 0), and duplicity
# 0.8 with --asynchronous-upload; wall time against bytes stored / rate.
bench-link:
    cargo bench --bench link

# Throughput to each remote target (rsync daemon, rsync over ssh, sftp, s3) on loopback next to file://.
bench-targets:
    cargo bench --bench targets

# The catalog: a synthetic chain of 1,000,000 files and 26 incrementals (build rate, list_dir,
# history, find, size on disk, against their goals), then `cairn catalog rebuild` of a real
# 200,000-file target next to `cairn ls --no-catalog`. `just bench-catalog --quick` (100,000
# synthetic, 20,000 real files); `--synthetic` or `--rebuild` runs one part.
bench-catalog *args:
    cargo bench --bench catalog -- {{args}}

# The appliance daemon's footprint: idle RSS and CPU, a full backup of the 618 MB tree through its
# API (time, peak RSS), RSS once idle again, against the Pi Zero 2 W goals. `--quick`: a tenth.
bench-appliance *args:
    cargo bench --bench appliance -- {{args}}

# cargo fuzz (nightly, `cargo install cargo-fuzz`) over fuzz/seeds/, two targets at a time;
# crashes land in fuzz/artifacts/<target>/; `just fuzz 60 manifest names` runs only those.
# Fuzz every parser of target or user bytes for SECONDS each (default 600); prints executions.
fuzz seconds="600" *targets:
    fuzz/run {{seconds}} {{targets}}
