package config

// Paths used by the Linux package and the container image (10-packaging).
const (
	PackagedDataDir = "/var/lib/tokmesh-server"
	PackagedKeyFile = "/etc/tokmesh-server/master.key"
)

// PackagedConfig is the configuration shipped as packaging/config.yaml
// (08-config §5): defaults with absolute data dir and key file paths.
func PackagedConfig() *Config {
	c := Default()
	c.Storage.DataDir = PackagedDataDir
	c.Security.Encryption.KeyFile = PackagedKeyFile
	return c
}

// PackagedYAML renders packaging/config.yaml, installed as
// /etc/tokmesh-server/config.yaml: the commented defaults with the packaged
// paths and commented examples for TLS, trusted proxies and clustering.
// A test keeps the committed file equal to it.
func PackagedYAML() []byte {
	return PackagedConfig().YAML(GenerateOptions{
		Comments: true,
		Header: append([]string{
			"/etc/tokmesh-server/config.yaml: TokMesh server configuration for the",
			"Linux package and the container image. Every key is listed; \"Default\"",
			"names the built-in default. (Source: packaging/config.yaml, generated",
			"from the typed configuration; regenerate it rather than editing it.)",
			"",
			"Differences from `tokmesh-server config default`: storage.data_dir and",
			"security.encryption.key_file use the packaged paths. Plaintext HTTP and",
			"RESP stay on loopback; to serve clients over the network configure",
			"server.tls and bind server.https / server.resp_tls publicly (examples",
			"below). A cluster example is at the end of this file.",
			"",
		}, sourcesHeader...),
		Examples: map[string][]string{
			"server.https.address":             {`address: "0.0.0.0:5443"    # serve HTTPS on all interfaces`},
			"server.resp_tls.address":          {`address: "0.0.0.0:6380"    # serve RESP-TLS on all interfaces`},
			"server.tls.cert_file":             {"cert_file: /etc/tokmesh-server/tls/server.crt"},
			"server.tls.key_file":              {"key_file: /etc/tokmesh-server/tls/server.key"},
			"server.tls.client_ca_file":        {"client_ca_file: /etc/tokmesh-server/tls/client-ca.crt"},
			"security.network.trusted_proxies": {`trusted_proxies: ["10.0.0.0/8", "192.168.0.0/16"]    # load balancers / gateways`},
			"cluster.enabled":                  {"enabled: true    # see the cluster example at the end of this file"},
			"cluster.listen_address":           {`listen_address: "10.0.0.11:5343"`},
			"cluster.advertise_address":        {`advertise_address: "10.0.0.11:5343"`},
			"cluster.seeds":                    {`seeds: ["10.0.0.11:5343", "10.0.0.12:5343", "10.0.0.13:5343"]`},
			"cluster.tls.cert_file":            {"cert_file: /etc/tokmesh-server/tls/node.crt"},
			"cluster.tls.key_file":             {"key_file: /etc/tokmesh-server/tls/node.key"},
			"cluster.tls.ca_file":              {"ca_file: /etc/tokmesh-server/tls/ca.crt"},
		},
		Footer: []string{
			"Minimal three-node cluster example (this node is 10.0.0.11); set these",
			"keys above:",
			"",
			"server:",
			`  https: {address: "0.0.0.0:5443"}`,
			`  resp_tls: {address: "0.0.0.0:6380"}`,
			"  tls: {cert_file: /etc/tokmesh-server/tls/server.crt, key_file: /etc/tokmesh-server/tls/server.key}",
			"storage: {data_dir: /var/lib/tokmesh-server}",
			"security: {encryption: {key_file: /etc/tokmesh-server/master.key}}",
			"cluster:",
			"  enabled: true",
			`  listen_address: "10.0.0.11:5343"`,
			`  advertise_address: "10.0.0.11:5343"`,
			`  seeds: ["10.0.0.11:5343", "10.0.0.12:5343", "10.0.0.13:5343"]`,
			"  bootstrap_expect: 3",
			"  tls: {cert_file: /etc/tokmesh-server/tls/node.crt, key_file: /etc/tokmesh-server/tls/node.key, ca_file: /etc/tokmesh-server/tls/ca.crt}",
		},
	})
}
