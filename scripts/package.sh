#!/usr/bin/env bash
# Builds the release artefacts locally into dist/ (10-packaging §7):
#   1. goreleaser release --snapshot --clean --skip=publish
#      -> archives, checksums.txt, .deb, .rpm (goreleaser.yaml)
#      Without goreleaser: only the Windows binaries and the generated files
#      (enough for the .msi), with a warning.
#   2. the .msi from packaging/windows/tokmesh.wxs with wixl (Debian package
#      wixl), completed with msibuild (msitools) and added to checksums.txt.
#
# Environment: GORELEASER (default bin/goreleaser, then goreleaser on PATH),
# GORELEASER_ARGS (default: release --snapshot --clean --skip=publish),
# SKIP_MSI=1 to stop after step 1.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'package: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

GORELEASER=${GORELEASER:-bin/goreleaser}
if ! command -v "$GORELEASER" >/dev/null 2>&1; then
    GORELEASER=$(command -v goreleaser || true)
fi
read -r -a GORELEASER_ARGS <<<"${GORELEASER_ARGS:-release --snapshot --clean --skip=publish}"

# --- 1. archives, checksums, .deb, .rpm -------------------------------------
# goreleaser drops all git information (commit "none") when the clone has no
# remote; give it the project's URL through the environment, without
# touching .git/config.
if ! git ls-remote --get-url >/dev/null 2>&1; then
    log "no git remote: using https://github.com/yndnr/tokmesh-go.git for goreleaser's git state"
    export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url \
        GIT_CONFIG_VALUE_0=https://github.com/yndnr/tokmesh-go.git
fi
if [ -n "$GORELEASER" ]; then
    log "$GORELEASER ${GORELEASER_ARGS[*]}"
    "$GORELEASER" "${GORELEASER_ARGS[@]}"
    version=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' dist/metadata.json | head -n 1)
else
    log "WARNING: goreleaser not found (make goreleaser); building only the Windows binaries for the .msi"
    version=0.0.0-dev
    rm -rf dist && mkdir -p dist/tokmesh_windows_amd64
    go run ./packaging/gen -out bin/gen -version "$version"
    for main in cmd/*/; do
        name=$(basename "$main")
        CGO_ENABLED=0 GOOS=windows GOARCH=amd64 go build -trimpath -buildvcs=false \
            -ldflags "-s -w -X github.com/yndnr/tokmesh-go/internal/buildinfo.Version=$version" \
            -o "dist/tokmesh_windows_amd64/$name.exe" "./$main"
    done
fi
[ -n "$version" ] || die "cannot read the version from dist/metadata.json"

# --- 2. the .msi ------------------------------------------------------------
if [ "${SKIP_MSI:-0}" = 1 ]; then
    log "SKIP_MSI=1: no .msi"
    exit 0
fi
command -v wixl >/dev/null || die "wixl not found: apt-get install wixl msitools (or SKIP_MSI=1)"
command -v msibuild >/dev/null || die "msibuild not found: apt-get install msitools"

# Windows Installer versions are numeric (major.minor.build): 1.2.3-rc.1 -> 1.2.3.
msi_version=$(printf '%s' "$version" | sed -n 's/^v\{0,1\}\([0-9]\{1,\}\.[0-9]\{1,\}\.[0-9]\{1,\}\).*/\1/p')
[ -n "$msi_version" ] || die "version $version has no major.minor.patch for the .msi"

stage=dist/msi-stage # relative: wixl resolves File/@Source against the working directory
rm -rf "$stage" && mkdir -p "$stage/bin"
shopt -s nullglob
exes=(dist/*_windows_amd64*/*.exe)
shopt -u nullglob
[ ${#exes[@]} -gt 0 ] || die "no windows/amd64 binaries under dist/"
cp "${exes[@]}" "$stage/bin/"
[ -f bin/gen/windows/config.yaml ] || die "bin/gen/windows/config.yaml missing (go run ./packaging/gen)"
cp bin/gen/windows/config.yaml "$stage/config.yaml"

defines=(-D "Version=$msi_version" -D "StageDir=$stage")
[ -f "$stage/bin/tokmesh-cli.exe" ] && defines+=(-D HaveCli=1)
[ -f "$stage/bin/tokmesh-bench.exe" ] && defines+=(-D HaveBench=1)

msi="dist/tokmesh_${version}_windows_amd64.msi"
log "wixl -a x64 ${defines[*]} -o $msi packaging/windows/tokmesh.wxs"
wixl -a x64 "${defines[@]}" -o "$msi" packaging/windows/tokmesh.wxs

# What wixl cannot express (see the comment at the top of tokmesh.wxs).
q() { msibuild "$msi" -q "$1"; }
# The bin directory on the system PATH: "=" set on install, "-" removed on
# uninstall, "*" system variable; "[~];" appends to the existing value.
q 'CREATE TABLE `Environment` (`Environment` CHAR(72) NOT NULL, `Name` CHAR(255) NOT NULL LOCALIZABLE, `Value` CHAR(255) LOCALIZABLE, `Component_` CHAR(72) NOT NULL PRIMARY KEY `Environment`)'
q "INSERT INTO \`Environment\` (\`Environment\`, \`Name\`, \`Value\`, \`Component_\`) VALUES ('TokMeshPath', '=-*PATH', '[~];[BINDIR]', 'TokmeshServer')"
q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Sequence\`) VALUES ('RemoveEnvironmentStrings', 3300)"
q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Sequence\`) VALUES ('WriteEnvironmentStrings', 5200)"
# config.yaml: msidbComponentAttributes64bit (256) + Permanent (16) +
# NeverOverwrite (128) = 400: upgrades and uninstalls keep an edited file.
q "UPDATE \`Component\` SET \`Attributes\` = 400 WHERE \`Component\` = 'ConfigFile'"
rm -rf "$stage"

if [ -f dist/checksums.txt ]; then
    (cd dist && sha256sum "$(basename "$msi")") >>dist/checksums.txt
fi
log "built $msi (ProductVersion $msi_version)"
ls -l dist/*.deb dist/*.rpm dist/*.tar.gz dist/*.zip dist/*.msi 2>/dev/null || true
