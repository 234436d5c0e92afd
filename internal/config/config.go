package config

// This file is the single source of the configuration schema. Each field's
// doc comment becomes its description in `tokmesh-server config default`
// (the file is embedded and parsed at run time, see docs.go), and its struct
// tags give the rest:
//
//	key       YAML key (and, upper-cased, the TOKMESH_ environment name)
//	default   default value, in configuration syntax; Default() parses it
//	range     inclusive bounds "lo..hi" (either side may be empty), checked by Validate
//	enum      allowed values "a|b|c", checked by Validate
//	format    value syntax checked by Validate (see formats in validate.go)
//	required  "true" if the value may not be empty
//	unit      unit of a plain number, for the docs
//	flags     H = hot-reloadable, C = cluster-wide (08-config §3)
//
// Doc comments here are written as plain sentences for the generated YAML;
// cross-key constraints are stated in them, bounds come from the tags.

import "time"

// Config is the complete server configuration (08-config §3). Obtain one
// from Default or Load; check it with Validate.
type Config struct {
	// Client-facing listeners, TLS, limits, timeouts and shutdown.
	Server Server `key:"server"`
	// Data directory, write-ahead log, snapshots and backups.
	Storage Storage `key:"storage"`
	// Session lifetime, per-user quota and the expiry sweeper.
	Session Session `key:"session"`
	// Encryption at rest, API-key authentication, client IPs, brute-force guard and anti-replay.
	Security Security `key:"security"`
	// Clustering (off by default: a standalone node owns every partition).
	Cluster Cluster `key:"cluster"`
	// Logging, metrics, tracing and the audit log.
	Telemetry Telemetry `key:"telemetry"`
}

// Server holds the client-facing listeners and their limits.
type Server struct {
	// Plaintext HTTP API listener.
	HTTP HTTPListener `key:"http"`
	// HTTPS API listener; it starts only when server.tls.cert_file and key_file are set.
	HTTPS HTTPSListener `key:"https"`
	// Plaintext Redis-protocol (RESP) listener.
	RESP RESPListener `key:"resp"`
	// RESP over TLS listener; it starts only when server.tls.cert_file and key_file are set.
	RESPTLS RESPTLSListener `key:"resp_tls"`
	// TLS material and policy shared by the HTTPS and RESP-TLS listeners.
	TLS ServerTLS `key:"tls"`
	// Local admin endpoint (Unix socket or Windows named pipe): admin rights without an API key.
	Local Local `key:"local"`
	// Permit plaintext listeners (HTTP, RESP) on non-loopback addresses. Tokens and API
	// secrets then cross the network unencrypted; a warning is logged at every start.
	AllowInsecurePublic bool `key:"allow_insecure_public" default:"false"`
	// Request size and connection limits.
	Limits Limits `key:"limits"`
	// HTTP server timeouts. Downloads, uploads and backup creation are exempt from read and write.
	Timeouts Timeouts `key:"timeouts"`
	// Graceful shutdown on SIGTERM/SIGINT.
	Shutdown ServerShutdown `key:"shutdown"`
}

// HTTPListener is the plaintext HTTP API listener.
type HTTPListener struct {
	// Start the plaintext HTTP listener.
	Enabled bool `key:"enabled" default:"true"`
	// Bind address. Loopback only (127.0.0.0/8, ::1, localhost) unless
	// server.allow_insecure_public is true; port 0 picks a free port.
	Address string `key:"address" default:"127.0.0.1:5080" format:"addr"`
}

// HTTPSListener is the HTTPS API listener.
type HTTPSListener struct {
	// Start the HTTPS listener (only when TLS material is configured).
	Enabled bool `key:"enabled" default:"true"`
	// Bind address; may be non-loopback.
	Address string `key:"address" default:"127.0.0.1:5443" format:"addr"`
}

// RESPListener is the plaintext Redis-protocol listener.
type RESPListener struct {
	// Start the plaintext RESP listener.
	Enabled bool `key:"enabled" default:"true"`
	// Bind address. Loopback only (127.0.0.0/8, ::1, localhost) unless
	// server.allow_insecure_public is true; port 0 picks a free port.
	Address string `key:"address" default:"127.0.0.1:6379" format:"addr"`
}

// RESPTLSListener is the Redis-protocol-over-TLS listener.
type RESPTLSListener struct {
	// Start the RESP-TLS listener (only when TLS material is configured).
	Enabled bool `key:"enabled" default:"true"`
	// Bind address; may be non-loopback.
	Address string `key:"address" default:"127.0.0.1:6380" format:"addr"`
}

// ServerTLS is the certificate and policy of the HTTPS and RESP-TLS listeners.
type ServerTLS struct {
	// PEM certificate chain (leaf first). Set together with key_file, or neither.
	// Reloaded when the file changes.
	CertFile string `key:"cert_file" default:"" format:"pem" flags:"H"`
	// PEM private key matching cert_file. Set together with cert_file, or neither.
	KeyFile string `key:"key_file" default:"" format:"pem" flags:"H"`
	// PEM CA bundle used to verify client certificates.
	ClientCAFile string `key:"client_ca_file" default:"" format:"pem" flags:"H"`
	// Client certificate policy; require needs client_ca_file. Client
	// certificates never replace API keys.
	ClientAuth string `key:"client_auth" default:"none" enum:"none|optional|require"`
	// Minimum TLS version (TLS 1.2 suites are limited to ECDHE with AEAD ciphers).
	MinVersion string `key:"min_version" default:"1.2" enum:"1.2|1.3"`
}

// Local is the local admin endpoint.
type Local struct {
	// Serve the local admin endpoint (disabling it logs a warning at start).
	Enabled bool `key:"enabled" default:"true"`
	// Unix socket path (at most 104 bytes); empty means <storage.data_dir>/admin.sock.
	SocketPath string `key:"socket_path" default:"" format:"path"`
	// Windows named pipe used instead of the Unix socket.
	PipeName string `key:"pipe_name" default:"\\\\.\\pipe\\tokmesh-server" format:"pipe"`
}

// Limits bounds request sizes and connections.
type Limits struct {
	// Maximum JSON request body (the admin config-validate route allows 1 MiB).
	MaxBodySize Size `key:"max_body_size" default:"64KiB" range:"1KiB..1MiB"`
	// Maximum restore upload.
	MaxUploadSize Size `key:"max_upload_size" default:"100MiB" range:"1MiB..64GiB"`
	// Maximum concurrent RESP connections (plaintext and TLS together).
	MaxRESPConnections int `key:"max_resp_connections" default:"10000" range:"1..1000000" unit:"connections"`
}

// Timeouts are the HTTP server timeouts.
type Timeouts struct {
	// Time allowed to read a request's headers.
	ReadHeader time.Duration `key:"read_header" default:"5s" range:"1s..10m"`
	// Time allowed to read a whole request.
	Read time.Duration `key:"read" default:"30s" range:"1s..10m"`
	// Time allowed to write a response.
	Write time.Duration `key:"write" default:"30s" range:"1s..10m"`
	// How long an idle keep-alive connection stays open.
	Idle time.Duration `key:"idle" default:"120s" range:"1s..10m"`
}

// ServerShutdown bounds graceful shutdown.
type ServerShutdown struct {
	// How long /ready reports 503 before the listeners close, so load
	// balancers stop sending traffic. At most server.shutdown.timeout.
	GracePeriod time.Duration `key:"grace_period" default:"5s" range:"0s..300s"`
	// Upper bound for the whole shutdown.
	Timeout time.Duration `key:"timeout" default:"30s" range:"5s..300s"`
}

// Storage is the durable state of a node.
type Storage struct {
	// Data directory (WAL, snapshots, backups, control store, audit log,
	// admin socket). Relative paths resolve against the working directory.
	DataDir string `key:"data_dir" default:"./data" format:"path" required:"true"`
	// Encrypted write-ahead log.
	WAL WAL `key:"wal"`
	// Periodic snapshots that bound WAL replay.
	Snapshot Snapshot `key:"snapshot"`
	// Backup retention.
	Backup Backup `key:"backup"`
}

// WAL configures the write-ahead log.
type WAL struct {
	// When writes are fsynced: always (before acknowledging), interval
	// (group commit every sync_interval) or none (left to the OS).
	SyncMode string `key:"sync_mode" default:"interval" enum:"always|interval|none"`
	// Group-commit fsync period in interval mode; keeps RPO under one second.
	SyncInterval time.Duration `key:"sync_interval" default:"100ms" range:"1ms..1s"`
	// Fsync revocations before acknowledging them, whatever sync_mode says.
	SyncRevocations bool `key:"sync_revocations" default:"true"`
	// Size at which a WAL segment is closed and a new one started.
	SegmentSize Size `key:"segment_size" default:"64MiB" range:"1MiB..1GiB"`
}

// Snapshot configures snapshots.
type Snapshot struct {
	// Time between snapshots.
	Interval time.Duration `key:"interval" default:"1h" range:"1m..168h" flags:"H"`
	// WAL bytes written since the last snapshot that trigger an early snapshot.
	WALThreshold Size `key:"wal_threshold" default:"256MiB" range:"16MiB..64GiB" flags:"H"`
	// Number of snapshots kept.
	Retain int `key:"retain" default:"2" range:"2..100" unit:"snapshots"`
}

// Backup configures backup retention.
type Backup struct {
	// Backups older than this many days are deleted; 0 keeps them forever.
	RetentionDays int `key:"retention_days" default:"7" range:"0..3650" unit:"days" flags:"H"`
	// The newest this many backups are always kept, whatever their age.
	RetainMin int `key:"retain_min" default:"5" range:"1..1000" unit:"backups" flags:"H"`
}

// Session configures session lifetime and limits.
type Session struct {
	// Session lifetimes.
	TTL TTL `key:"ttl"`
	// Per-user session quota.
	Quota Quota `key:"quota"`
	// Background removal of expired sessions and tombstones.
	Sweeper Sweeper `key:"sweeper"`
}

// TTL holds session lifetimes.
type TTL struct {
	// TTL of a session created or renewed without one. At most session.ttl.max.
	Default time.Duration `key:"default" default:"2h" range:"1s..8760h" flags:"HC"`
	// Largest TTL a client may ask for. At least session.ttl.default.
	Max time.Duration `key:"max" default:"720h" range:"1s..8760h" flags:"HC"`
	// How long expired sessions and tombstones are kept past their expiry
	// before removal (they answer "expired"/"revoked" meanwhile).
	ExpiredGrace time.Duration `key:"expired_grace" default:"10s" range:"0s..1h"`
	// Idle timeout for sessions created without one; 0s means no idle
	// expiry. At most session.ttl.max.
	IdleDefault time.Duration `key:"idle_default" default:"0s" range:"0s..8760h" flags:"HC"`
}

// Quota limits live sessions per user.
type Quota struct {
	// Maximum live sessions per user_id.
	MaxPerUser int `key:"max_per_user" default:"50" range:"1..10000" unit:"sessions" flags:"HC"`
	// What a create beyond the quota does: reject it, or revoke the user's
	// oldest session (evict_oldest).
	OnExceed string `key:"on_exceed" default:"reject" enum:"reject|evict_oldest" flags:"HC"`
}

// Sweeper configures expiry sweeping (sampled, Redis-style).
type Sweeper struct {
	// Time between sweep cycles.
	Interval time.Duration `key:"interval" default:"100ms" range:"10ms..1m"`
	// Entries sampled per shard and round.
	SampleSize int `key:"sample_size" default:"20" range:"1..10000" unit:"entries"`
	// Maximum rounds per cycle while many sampled entries are expired.
	MaxRounds int `key:"max_rounds" default:"4" range:"1..100" unit:"rounds"`
}

// Security groups encryption, authentication and abuse protection.
type Security struct {
	// Encryption at rest (04-security §11).
	Encryption Encryption `key:"encryption"`
	// API-key authentication.
	Auth Auth `key:"auth"`
	// Client IP resolution.
	Network Network `key:"network"`
	// Per-IP blocking after repeated failures.
	BruteForce BruteForce `key:"brute_force"`
	// X-Timestamp / X-Nonce replay protection on write routes.
	AntiReplay AntiReplay `key:"anti_replay"`
}

// Encryption selects the master key file and cipher.
type Encryption struct {
	// Master key file (64 hex characters), used when TOKMESH_ENCRYPTION_KEY is
	// unset. It must not be readable by others nor writable by group or others.
	// Empty: <storage.data_dir>/master.key, generated on first start.
	KeyFile string `key:"key_file" default:"" format:"path"`
	// AEAD for newly written files; auto picks AES-256-GCM with hardware AES,
	// else ChaCha20-Poly1305. Existing files are read with their own cipher.
	Cipher string `key:"cipher" default:"auto" enum:"auto|aes-256-gcm|chacha20-poly1305"`
}

// Auth configures API-key authentication.
type Auth struct {
	// Global client allowlist (IPs or CIDRs); empty allows every client.
	// Does not apply to the local admin endpoint.
	AllowList []string `key:"allow_list" default:"" format:"cidrs" flags:"H"`
	// Rate limit given to new API keys that do not specify one.
	DefaultRateLimit int `key:"default_rate_limit" default:"1000" range:"1..1000000" unit:"requests/s"`
	// How long a rotated key's previous secret stays valid.
	RotationGrace time.Duration `key:"rotation_grace" default:"1h" range:"0s..24h" flags:"H"`
	// Entries in the verified-credential cache.
	CacheCapacity int `key:"cache_capacity" default:"10000" range:"1000..100000" unit:"entries"`
	// Lifetime of a verified-credential cache entry.
	CacheTTL time.Duration `key:"cache_ttl" default:"60s" range:"10s..5m"`
	// Argon2id parameters for newly hashed API-key secrets.
	Argon2 Argon2 `key:"argon2"`
}

// Argon2 holds Argon2id cost parameters (new hashes only; verification
// reads them from each stored hash).
type Argon2 struct {
	// Memory cost.
	Memory int `key:"memory" default:"16384" range:"8192..1048576" unit:"KiB"`
	// Time cost (passes).
	Iterations int `key:"iterations" default:"2" range:"1..10" unit:"passes"`
	// Lanes (threads).
	Parallelism int `key:"parallelism" default:"2" range:"1..16" unit:"lanes"`
}

// Network configures client IP resolution.
type Network struct {
	// Proxies (IPs or CIDRs) whose Forwarded / X-Forwarded-For / X-Real-IP
	// headers are trusted to carry the client IP; empty trusts none.
	TrustedProxies []string `key:"trusted_proxies" default:"" format:"cidrs" flags:"H"`
}

// BruteForce configures the per-IP brute-force guard.
type BruteForce struct {
	// Block client IPs that fail too often.
	Enabled bool `key:"enabled" default:"true" flags:"H"`
	// Sliding window in which failures are counted.
	Window time.Duration `key:"window" default:"60s" range:"10s..1h" flags:"H"`
	// Failed API-key verifications within window that block the IP.
	MaxAuthFailures int `key:"max_auth_failures" default:"20" range:"1..100000" unit:"failures" flags:"H"`
	// Failed token validations (unknown or malformed tokens) within window that block the IP.
	MaxTokenFailures int `key:"max_token_failures" default:"100" range:"1..1000000" unit:"failures" flags:"H"`
	// How long a blocked IP stays blocked.
	BlockDuration time.Duration `key:"block_duration" default:"5m" range:"1s..24h" flags:"H"`
	// IPs or CIDRs that are never blocked (e.g. gateways).
	Exempt []string `key:"exempt" default:"" format:"cidrs" flags:"H"`
}

// AntiReplay configures X-Timestamp / X-Nonce checks.
type AntiReplay struct {
	// Make X-Timestamp and X-Nonce mandatory on write routes of the TCP listeners.
	Required bool `key:"required" default:"false" flags:"H"`
	// Maximum distance between X-Timestamp and the server clock.
	TimestampWindow time.Duration `key:"timestamp_window" default:"30s" range:"1s..5m" flags:"H"`
	// How long a nonce is remembered. At least 2 x timestamp_window.
	NonceTTL time.Duration `key:"nonce_ttl" default:"60s" range:"1s..10m" flags:"H"`
	// Maximum remembered nonces per node.
	NonceCacheSize int `key:"nonce_cache_size" default:"100000" range:"1000..1000000" unit:"entries"`
}

// Cluster configures clustering (06-cluster).
type Cluster struct {
	// Run as a cluster member. Requires advertise_address and the cluster TLS files.
	Enabled bool `key:"enabled" default:"false"`
	// Node ID; empty means generate one on first start and persist it in the data dir.
	NodeID string `key:"node_id" default:"" format:"nodeid"`
	// Bind address of the cluster port (always mutual TLS 1.3: gossip, Raft, RPC).
	ListenAddress string `key:"listen_address" default:"127.0.0.1:5343" format:"addr"`
	// Address other nodes use to reach this node's cluster port; required when enabled.
	AdvertiseAddress string `key:"advertise_address" default:"" format:"advertise"`
	// Cluster ports of existing or founding members to join; must be empty
	// when clustering is disabled.
	Seeds []string `key:"seeds" default:"" format:"addrs"`
	// Voters that must be present before the first bootstrap (first start only).
	BootstrapExpect int `key:"bootstrap_expect" default:"3" range:"1..7" unit:"nodes"`
	// Number of partitions; fixed when the cluster (or standalone node) is first created.
	Partitions int `key:"partitions" default:"256" range:"8..4096" unit:"partitions"`
	// Copies of each partition (primary included).
	ReplicationFactor int `key:"replication_factor" default:"2" range:"1..3" unit:"copies"`
	// Raft voters; other members are non-voters.
	Voters int `key:"voters" default:"3" enum:"3|5" unit:"nodes"`
	// Lease a primary holds from the Raft leader to serve its partitions.
	LeaseDuration time.Duration `key:"lease_duration" default:"5s" range:"2s..10s"`
	// How long a suspected-dead node must stay unreachable before failover.
	FailoverConfirm time.Duration `key:"failover_confirm" default:"1s" range:"0s..10s"`
	// Deadline for a request forwarded to a partition's primary.
	ForwardTimeout time.Duration `key:"forward_timeout" default:"2s" range:"100ms..30s"`
	// How long a starting node tries to join before giving up (exit 1).
	JoinTimeout time.Duration `key:"join_timeout" default:"5m" range:"10s..1h"`
	// Cluster-port TLS material; all three files are required when enabled.
	TLS ClusterTLS `key:"tls"`
	// Failure detection.
	Gossip Gossip `key:"gossip"`
	// Primary-to-replica streaming.
	Replication Replication `key:"replication"`
	// Moving partitions between nodes.
	Rebalance Rebalance `key:"rebalance"`
	// Raft log compaction.
	Raft Raft `key:"raft"`
	// Leaving the cluster on shutdown.
	Shutdown ClusterShutdown `key:"shutdown"`
}

// ClusterTLS is the cluster port's mutual-TLS material.
type ClusterTLS struct {
	// PEM certificate chain of this node.
	CertFile string `key:"cert_file" default:"" format:"pem" flags:"H"`
	// PEM private key matching cert_file.
	KeyFile string `key:"key_file" default:"" format:"pem" flags:"H"`
	// PEM CA bundle that signs every member's certificate.
	CAFile string `key:"ca_file" default:"" format:"pem" flags:"H"`
}

// Gossip configures memberlist failure detection.
type Gossip struct {
	// Time between failure-detection probes.
	ProbeInterval time.Duration `key:"probe_interval" default:"500ms" range:"100ms..5s"`
}

// Replication configures replica streaming.
type Replication struct {
	// Deadline for a replica's acknowledgement (revocations wait for in-sync replicas).
	AckTimeout time.Duration `key:"ack_timeout" default:"1s" range:"100ms..10s"`
}

// Rebalance configures partition moves.
type Rebalance struct {
	// Rebalance automatically when members join or leave.
	Auto bool `key:"auto" default:"true"`
	// Bandwidth cap for partition transfers per node.
	MaxRate Rate `key:"max_rate" default:"20Mbps" range:"1Kbps..10Gbps"`
	// Partitions moved in parallel per node.
	Concurrency int `key:"concurrency" default:"2" range:"1..16" unit:"partitions"`
	// Sessions expiring sooner than this are not transferred; 0s transfers all.
	MinTTL time.Duration `key:"min_ttl" default:"0s" range:"0s..24h"`
}

// Raft configures Raft log compaction.
type Raft struct {
	// Log entries between Raft snapshots.
	SnapshotThreshold uint64 `key:"snapshot_threshold" default:"10000" range:"1000.." unit:"entries"`
	// Log entries kept after a Raft snapshot (for slow followers).
	TrailingLogs uint64 `key:"trailing_logs" default:"1000" range:"100.." unit:"entries"`
}

// ClusterShutdown configures leaving the cluster.
type ClusterShutdown struct {
	// Time allowed to hand primaries over to other nodes before shutting down; 0s skips the handoff.
	HandoffTimeout time.Duration `key:"handoff_timeout" default:"10s" range:"0s..5m"`
}

// Telemetry groups logging, metrics, tracing and audit.
type Telemetry struct {
	// Application log (JSON lines on stdout).
	Logging Logging `key:"logging"`
	// Prometheus metrics at /metrics.
	Metrics Metrics `key:"metrics"`
	// OpenTelemetry tracing (needs a tracing build).
	Tracing Tracing `key:"tracing"`
	// Tamper-evident audit log in <storage.data_dir>/audit.
	Audit Audit `key:"audit"`
}

// Logging configures the application log.
type Logging struct {
	// Minimum level logged.
	Level string `key:"level" default:"info" enum:"debug|info|warn|error" flags:"H"`
	// Log the effective configuration at startup (it contains no secrets).
	DumpConfig bool `key:"dump_config" default:"false"`
}

// Metrics configures /metrics.
type Metrics struct {
	// Serve /metrics.
	Enabled bool `key:"enabled" default:"true"`
	// Require an API key (role metrics or admin) for /metrics.
	AuthEnabled bool `key:"auth_enabled" default:"true" flags:"H"`
}

// Tracing configures OpenTelemetry export.
type Tracing struct {
	// Export traces; requires endpoint.
	Enabled bool `key:"enabled" default:"false"`
	// OTLP collector endpoint (URL or host:port).
	Endpoint string `key:"endpoint" default:"" format:"url"`
	// Fraction of requests traced.
	SamplingRatio float64 `key:"sampling_ratio" default:"0.01" range:"0..1" unit:"fraction"`
}

// Audit configures the audit log.
type Audit struct {
	// Audit files older than this many days are deleted.
	RetentionDays int `key:"retention_days" default:"90" range:"1..3650" unit:"days" flags:"H"`
	// Queued audit records before new ones are dropped (and counted).
	BufferSize int `key:"buffer_size" default:"10000" range:"100..1000000" unit:"records"`
}
