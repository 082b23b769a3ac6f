# Cairn's tasks. `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]

export DUP3 := env_var_or_default("DUP3", "/opt/duplicity3/bin/duplicity")

# Build the release binary.
build:
    cargo build --release

# Every test: formatting, lints, unit and integration tests.
test: lint
    cargo test --all-targets

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings
