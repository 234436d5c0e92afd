// Package config is the typed configuration of tokmesh-server (08-config).
//
// Config mirrors the key tree: cfg.Storage.WAL.SyncMode is the key
// storage.wal.sync_mode. Default() builds the defaults from the struct tags
// in config.go, Validate() reports every problem as an *Error with a
// TM-CFG-* code, and Load() merges file, environment and flags with the
// precedence flag > environment > file > default. `tokmesh-server config
// default` prints DefaultYAML(), generated from the same struct (field doc
// comments and tags), so the documentation cannot drift from the code.
//
// Nothing outside this package parses configuration sources.
package config
