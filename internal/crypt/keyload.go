package crypt

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// EnvKey is the environment variable that may hold the master key as 64 hex characters.
const EnvKey = "TOKMESH_ENCRYPTION_KEY"

// DefaultKeyFileName is the auto-generated key file inside the data dir.
const DefaultKeyFileName = "master.key"

var (
	// ErrNoKey means no key source exists and a new key may not be generated
	// (the data dir already holds encrypted data). Tools map it to exit 78.
	ErrNoKey = errors.New("no master key available")
	// ErrKeyFilePermissions means the key file is readable by others or
	// writable by group/others (TM-CFG-1004).
	ErrKeyFilePermissions = errors.New("master key file has unsafe permissions")
	// ErrBadKeyFormat means a key source does not hold 64 hex characters.
	ErrBadKeyFormat = errors.New("master key must be 64 hex characters")
)

// KeySource says where a master key was loaded from.
type KeySource string

// Key sources in lookup order.
const (
	SourceEnv       KeySource = "env"
	SourceFile      KeySource = "key_file"
	SourceDataDir   KeySource = "data_dir"
	SourceGenerated KeySource = "generated"
)

// LoadOptions controls master key lookup (04-security §11).
type LoadOptions struct {
	// KeyFile is security.encryption.key_file (or walctl's --key-file); "" = unset.
	KeyFile string
	// DataDir is where master.key lives or is generated.
	DataDir string
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
	// AllowGenerate permits creating <data_dir>/master.key when no source
	// exists. The caller sets it only when the data dir holds no encrypted data.
	AllowGenerate bool
}

// LoadMasterKey finds the master key: env TOKMESH_ENCRYPTION_KEY, then
// KeyFile, then <DataDir>/master.key, generating the latter (mode 0600)
// when allowed.
func LoadMasterKey(o LoadOptions) (*MasterKey, KeySource, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv(EnvKey); v != "" {
		k, err := parseHexKey([]byte(v))
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", EnvKey, err)
		}
		return k, SourceEnv, nil
	}
	if o.KeyFile != "" {
		k, err := ReadKeyFile(o.KeyFile)
		if err != nil {
			return nil, "", err
		}
		return k, SourceFile, nil
	}
	path := filepath.Join(o.DataDir, DefaultKeyFileName)
	k, err := ReadKeyFile(path)
	if err == nil {
		return k, SourceDataDir, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", err
	}
	if !o.AllowGenerate {
		return nil, "", fmt.Errorf("%w: set %s, configure security.encryption.key_file, or restore %s", ErrNoKey, EnvKey, path)
	}
	k, err = GenerateMasterKey()
	if err != nil {
		return nil, "", err
	}
	if err := WriteKeyFile(path, k); err != nil {
		return nil, "", err
	}
	return k, SourceGenerated, nil
}

// ReadKeyFile reads a 64-hex-character key file (optional trailing newline)
// and checks that it is not readable by others nor writable by group/others.
func ReadKeyFile(path string) (*MasterKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o026 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o (want 0600 or 0400)", ErrKeyFilePermissions, path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := parseHexKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// WriteKeyFile writes k as hex with mode 0600, failing if path exists.
func WriteKeyFile(path string, k *MasterKey) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(k.Hex() + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func parseHexKey(b []byte) (*MasterKey, error) {
	b = bytes.TrimRight(b, "\r\n")
	s := strings.TrimSpace(string(b))
	if len(s) != 2*KeySize {
		return nil, ErrBadKeyFormat
	}
	raw, err := hex.DecodeString(s)
	if err != nil {
		return nil, ErrBadKeyFormat
	}
	return NewMasterKey(raw)
}
