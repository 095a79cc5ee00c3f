#!/usr/bin/env bash
# Installs the Debian packages megatune needs. Safe to re-run.
#   scripts/install-deps.sh            build, run and test (PyTorch, sklearn, clang, node...)
#   scripts/install-deps.sh --runtime  build and run only (what scripts/quickstart.sh needs)
set -euo pipefail
runtime_only=0
[ "${1:-}" = "--runtime" ] && runtime_only=1
RUNTIME_PKGS=(
  build-essential cmake pkg-config          # compiler and build
  libopenblas-dev                           # GEMM (CBLAS)
  libopenmpi-dev openmpi-bin                # tensor/data parallel over MPI
  libyaml-dev                               # NeMo-style YAML configs
  libcjson-dev                              # JSON configs, safetensors headers
  libutf8proc-dev                           # Unicode data for the tokenizer
  libarchive-dev                            # .nemo (tar.gz) files
  zlib1g-dev                                # CRC-32 of checkpoint zip members
  libdnnl-dev                               # oneDNN: bf16 matrix products (trainer.precision=bf16)
  libcurl4-openssl-dev                      # downloads of pretrained names (HTTPS, proxies, resume)
)
TEST_PKGS=(
  python3-torch python3-numpy               # PyTorch reference (tests and bench only)
  python3-sklearn python3-scipy             # metric references (tests only)
  clang libclang-rt-14-dev                  # libFuzzer targets
  libopenblas0-openmp libtcmalloc-minimal4  # PyTorch's best setting in bench/ (the default BLAS stays pthread)
  libblis-openmp-dev                        # BLIS, timed beside OpenBLAS and oneDNN by bench_gemm only (never linked)
  nodejs npm                                # Hugging Face `tokenizers` reference (tests only)
  iproute2                                  # network namespaces as hosts for the multi-host MPI test
)
PKGS=("${RUNTIME_PKGS[@]}")
((runtime_only)) || PKGS+=("${TEST_PKGS[@]}")
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from outside Debian on some machines; accept any working node.
if command -v node >/dev/null 2>&1; then
  tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done; missing=("${tmp[@]}")
fi
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Hugging Face tokenizers (npm), used only by the tokenizer parity test.
here=$(cd "$(dirname "$0")/.." && pwd)
# In CI (CI=true) a failure is fatal: the parity test would only skip, and a skip is a failure there.
if ((!runtime_only)) && [ ! -d "$here/tools/node_modules/tokenizers" ]; then
  if ! command -v npm >/dev/null 2>&1 || ! (cd "$here/tools" && npm install --no-audit --no-fund --silent tokenizers >/dev/null 2>&1); then
    case "${CI:-}" in
      true|1|yes) echo "install-deps: npm install tokenizers failed (in $here/tools); CI needs it for the tokenizer parity tests" >&2; exit 1 ;;
      *) echo "install-deps: WARNING: npm install tokenizers failed; the tokenizer parity tests will be skipped" >&2 ;;
    esac
  fi
fi
echo "install-deps: ok"
