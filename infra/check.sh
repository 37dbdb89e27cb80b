#!/usr/bin/env bash
# `make test-infra`: infra/ checked by the tools a user runs, with no network registry.
#
#   1. the google provider 8.0.0, built from the Go module proxy once (then cached), laid out
#      as a filesystem mirror that a CLI config (TF_CLI_CONFIG_FILE) makes the only source;
#   2. terraform fmt -check, init -backend=false (from the mirror), validate;
#   3. tflint (from the Go module proxy) with its bundled terraform ruleset;
#   4. terraform test (infra/tests/*.tftest.hcl, plan mode on a mock provider);
#   5. the Go tests tagged `infra` (infra/*_test.go): every invariant's deliberately broken
#      copy makes `terraform test` fail on that invariant;
#   6. the Go tests of infra/ (environment contract, alert metrics) and internal/deploytest
#      (cloudbuild.yaml through the Google Cloud CLI's loader, BuildKit's Dockerfile lint,
#      static builds), with every tool required (no skips).
#
# Tools go to LEADPIPE_TOOLS (default ~/.cache/leadpipe), outside the clone, so a fresh clone
# on the same machine reuses them. Everything else happens in a temporary directory: the
# working tree gets no .terraform or lock file.
set -euo pipefail
cd "$(dirname "$0")"
INFRA=$(pwd)

GO=${GO:-go}
PROVIDER_VERSION=8.0.0
# The provider's repository tags releases in a way the module proxy sees as this
# pseudo-version; it is the commit of v8.0.0.
PROVIDER_MODULE=github.com/hashicorp/terraform-provider-google@v1.20.1-0.20260828184646-f3721fb45fa3
TFLINT_MODULE=github.com/terraform-linters/tflint@v0.64.0
TOOLS=${LEADPIPE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/leadpipe}
MIRROR=$TOOLS/terraform-mirror
PLATFORM=$($GO env GOOS)_$($GO env GOARCH)
PROVIDER_DIR=$MIRROR/registry.terraform.io/hashicorp/google/$PROVIDER_VERSION/$PLATFORM
PROVIDER_BIN=$PROVIDER_DIR/terraform-provider-google_v$PROVIDER_VERSION
TFLINT=$TOOLS/bin/tflint

step() { printf '\n== %s\n' "$*"; }
start=$(date +%s)

if [ ! -x "$PROVIDER_BIN" ]; then
  step "building hashicorp/google $PROVIDER_VERSION from the Go module proxy (once: ~8 min, ~2 GB)"
  tmpbin=$(mktemp -d)
  GOBIN=$tmpbin GOFLAGS=-buildvcs=false $GO install \
    -ldflags="-s -w -X github.com/hashicorp/terraform-provider-google/version.ProviderVersion=$PROVIDER_VERSION" \
    "$PROVIDER_MODULE"
  mkdir -p "$PROVIDER_DIR"
  mv "$tmpbin/terraform-provider-google" "$PROVIDER_BIN"
  rmdir "$tmpbin"
fi

if [ ! -x "$TFLINT" ]; then
  step "installing tflint from the Go module proxy"
  GOBIN=$TOOLS/bin GOFLAGS=-buildvcs=false $GO install "$TFLINT_MODULE"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The mirror is the only installation source: no registry, no network.
export TF_CLI_CONFIG_FILE=$work/terraformrc
cat >"$TF_CLI_CONFIG_FILE" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$MIRROR"
    include = ["registry.terraform.io/hashicorp/google"]
  }
}
EOF
export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
# The mock provider needs no credentials; make sure nothing on the machine is picked up.
unset GOOGLE_APPLICATION_CREDENTIALS GOOGLE_CREDENTIALS GOOGLE_OAUTH_ACCESS_TOKEN || true

terraform version

step "terraform fmt -check"
terraform fmt -check -recursive -diff "$INFRA"

# A copy of infra/ without any local state, initialised once; the broken copies of step 5
# reuse its .terraform directory and lock file.
base=$work/infra
mkdir -p "$base"
cp -R "$INFRA"/. "$base"/
rm -rf "$base/.terraform" "$base/.terraform.lock.hcl"

step "terraform init -backend=false (filesystem mirror)"
terraform -chdir="$base" init -backend=false -input=false -no-color | grep -E 'Installing|Installed|initialized|Error' || true
test -d "$base/.terraform/providers/registry.terraform.io/hashicorp/google/$PROVIDER_VERSION"

step "terraform validate"
terraform -chdir="$base" validate -no-color

step "tflint ($("$TFLINT" --version | head -1))"
"$TFLINT" --chdir="$base" --config="$base/.tflint.hcl" --format=compact

step "terraform test"
terraform -chdir="$base" test -no-color

step "broken copies: each invariant fails its test"
TF_TEST_BASE=$base $GO test -tags infra -count=1 -run 'TestBroken' "$INFRA/"

step "environment contract, alert metrics, Cloud Build loader, Dockerfile lint, static builds"
LEADPIPE_REQUIRE_TOOLS=1 $GO test -count=1 "$INFRA/" "$INFRA/../internal/deploytest/"

printf '\ntest-infra: passed in %ss\n' "$(($(date +%s) - start))"
