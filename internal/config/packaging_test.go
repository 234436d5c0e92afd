package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var update = flag.Bool("update", false, "rewrite packaging/config.yaml from the generator")

const packagedPath = "../../packaging/config.yaml"

// TestPackagedConfig_UpToDate keeps the committed packaging/config.yaml equal
// to PackagedYAML(). Regenerate with: go test ./internal/config -run Packaged -update
func TestPackagedConfig_UpToDate(t *testing.T) {
	want := PackagedYAML()
	if *update {
		if err := os.MkdirAll(filepath.Dir(packagedPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(packagedPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(packagedPath)
	if err != nil {
		t.Fatalf("%v (regenerate with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("packaging/config.yaml is stale; regenerate with: go test ./internal/config -run Packaged -update")
	}
}

func TestPackagedConfig_Loads(t *testing.T) {
	// The packaged key file does not exist here; the env key makes it inactive.
	c, _ := mustLoad(t, LoadOptions{ConfigFile: packagedPath, Environ: []string{"TOKMESH_ENCRYPTION_KEY=" + testKeyHex}})
	if !reflect.DeepEqual(c, PackagedConfig()) {
		t.Fatalf("packaged config loads as something else: %v", Changed(c, PackagedConfig()))
	}
	if c.Storage.DataDir != "/var/lib/tokmesh-server" || c.Security.Encryption.KeyFile != "/etc/tokmesh-server/master.key" {
		t.Fatalf("paths: %q %q", c.Storage.DataDir, c.Security.Encryption.KeyFile)
	}
	// The key file rule applies once the env key is absent.
	_, _, errs := Load(LoadOptions{ConfigFile: packagedPath, Environ: []string{}})
	if _, err := os.Stat(PackagedKeyFile); err != nil && (len(errs) != 1 || errs[0].Key != "security.encryption.key_file") {
		t.Fatalf("errs = %v", errs)
	}
}

// TestPackagedConfig_ClusterExampleIsValidYAML checks the commented cluster
// example: uncommented, it loads (file-existence errors aside).
func TestPackagedConfig_ClusterExampleIsValidYAML(t *testing.T) {
	out := PackagedYAML()
	i := bytes.Index(out, []byte("# server:\n"))
	if i < 0 {
		t.Fatal("cluster example missing")
	}
	var doc bytes.Buffer
	for _, line := range bytes.Split(out[i:], []byte("\n")) {
		doc.Write(bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("#")), []byte(" ")))
		doc.WriteByte('\n')
	}
	c, errs := FromYAML(doc.Bytes())
	for _, e := range errs {
		if e.Code != CodeFileUnreadable {
			t.Errorf("cluster example: %v", e)
		}
	}
	if !c.Cluster.Enabled || len(c.Cluster.Seeds) != 3 || c.Server.HTTPS.Address != "0.0.0.0:5443" {
		t.Fatalf("cluster example not applied: %+v", c.Cluster)
	}
}
