package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func writeFile(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "berth.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	c := Default()
	if err := c.LoadFile(writeFile(t, "listen: 127.0.0.1:6000\nlimits:\n  max_blob_bytes: 1000\nuploads:\n  ttl: 2h\n")); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"BERTH_LISTEN": ":7000", "BERTH_LIMITS_MAX_UPLOADS": "5", "BERTH_UPLOADS_TTL": "3h"}
	if err := c.LoadEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":7000" || c.Limits.MaxBlobBytes != 1000 || c.Limits.MaxUploads != 5 || c.Uploads.TTL != 3*time.Hour {
		t.Errorf("loaded %+v", c)
	}
	if c.Database != "sqlite:berth-data/berth.db" || c.Storage != "fs:berth-data/blobs" {
		t.Errorf("derived database %q storage %q", c.Database, c.Storage)
	}
}

func TestUnknownKeys(t *testing.T) {
	for _, body := range []string{"lisen: :5000\n", "tls:\n  certificate: x\n", "limits:\n  max_blobs: 1\n"} {
		c := Default()
		if err := c.LoadFile(writeFile(t, body)); err == nil {
			t.Errorf("LoadFile(%q) accepted an unknown key", body)
		}
	}
}

func TestEnvErrors(t *testing.T) {
	c := Default()
	err := c.LoadEnv(func(k string) string {
		if k == "BERTH_LIMITS_MAX_UPLOADS" {
			return "many"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "BERTH_LIMITS_MAX_UPLOADS") {
		t.Errorf("LoadEnv with a bad number err = %v", err)
	}
	names := strings.Join(EnvNames(), " ")
	for _, want := range []string{"BERTH_LISTEN", "BERTH_DATA_DIR", "BERTH_DATABASE", "BERTH_STORAGE", "BERTH_TLS_CERT", "BERTH_TLS_KEY"} {
		if !strings.Contains(names, want) {
			t.Errorf("EnvNames lacks %s", want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"tls half", func(c *Config) { c.TLS.Cert = "c.pem" }, "tls"},
		{"bad registry", func(c *Config) { c.Registry = "Bad_Name" }, "registry"},
		{"manifest limit", func(c *Config) { c.Limits.MaxManifestBytes = 5 << 20 }, "max_manifest_bytes"},
		{"postgres URL", func(c *Config) { c.Database = "postgres://u:p@h:bad port/db" }, "postgres"},
		{"unknown database", func(c *Config) { c.Database = "mysql://u@h/db" }, "database"},
		{"no database connections", func(c *Config) { c.DatabaseMaxConnections = 0 }, "database_max_connections: 0: use 1 to 1000"},
		{"too many database connections", func(c *Config) { c.DatabaseMaxConnections = 1001 }, "database_max_connections: 1001"},
		{"events retention", func(c *Config) { c.Events.Retention = time.Minute }, "events.retention"},
		{"events queue", func(c *Config) { c.Events.Queue = 0 }, "events.queue"},
		{"unknown storage", func(c *Config) { c.Storage = "gcs://b" }, "storage"},
		{"s3 credentials in the URL", func(c *Config) { c.Storage = "s3://key:secret@bucket" }, "credentials"},
		{"log level", func(c *Config) { c.Log.Level = "loud" }, "log.level"},
		{"empty listen", func(c *Config) { c.Listen = "" }, "listen"},
		{"acme without the terms", func(c *Config) { c.TLS.ACME.Domains = []string{"r.example.com"} }, "tls.acme.accept_terms: must be true"},
		{"acme and files", func(c *Config) {
			c.TLS.ACME.Domains, c.TLS.ACME.AcceptTerms, c.TLS.Cert, c.TLS.Key = []string{"r.example.com"}, true, "c.pem", "k.pem"
		}, "give a certificate's files or ACME's host names, not both"},
		{"acme for an address", func(c *Config) { c.TLS.ACME.Domains, c.TLS.ACME.AcceptTerms = []string{"203.0.113.7"}, true }, "is not a host name"},
		{"acme over http", func(c *Config) {
			c.TLS.ACME.Domains, c.TLS.ACME.AcceptTerms, c.TLS.ACME.DirectoryURL = []string{"r.example.com"}, true, "http://acme.example/dir"
		}, "is not an https:// URL"},
		{"reload too often", func(c *Config) { c.TLS.ReloadInterval = time.Millisecond }, "tls.reload_interval"},
		{"metrics listen", func(c *Config) { c.Metrics.Listen = "9090" }, "metrics.listen"},
	}
	for _, tc := range tests {
		c := Default()
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v; want an error about %s", tc.name, err, tc.want)
		}
	}
	c := Default()
	c.Database = "postgres://berth:secret@db.example:5432/berth?sslmode=require"
	if err := c.Validate(); err != nil {
		t.Errorf("a postgres:// database: %v", err)
	}
}

func TestParseStorage(t *testing.T) {
	st, err := ParseStorage("s3://bucket/some/prefix?endpoint=127.0.0.1:9000&region=eu-west-1&insecure=true&path_style=true&redirect=true&create_bucket=false&profile=p&credentials_file=/c&payload_signing=true&cache_size=2GiB")
	if c := st.S3; err != nil || c == nil || st.FSPath != "" || c.Bucket != "bucket" || c.Prefix != "some/prefix/" || c.Endpoint != "127.0.0.1:9000" ||
		c.Region != "eu-west-1" || !c.Insecure || !c.PathStyle || !c.Redirect || c.CreateBucket || c.Profile != "p" || c.CredentialsFile != "/c" || !c.PayloadSigning || c.CacheSize != 2<<30 {
		t.Errorf("ParseStorage = %+v %+v, %v", st, st.S3, err)
	}
	if st, err := ParseStorage("s3://b?cache_size=0"); err != nil || st.S3.CacheSize != 0 {
		t.Errorf("cache_size=0: %+v, %v", st.S3, err)
	}
	if st, err := ParseStorage("s3://b"); err != nil || st.S3.Prefix != "" || st.S3.Insecure || st.S3.PayloadSigning || st.S3.CacheSize != DefaultS3CacheSize {
		t.Errorf("bare bucket: %+v, %v", st, err)
	}
	if st, err := ParseStorage("fs:/var/lib/berth/blobs"); err != nil || st.FSPath != "/var/lib/berth/blobs" || st.S3 != nil {
		t.Errorf("fs: %+v, %v", st, err)
	}
	for _, bad := range []string{"fs:", "/x", "s3://", "s3://key:secret@bucket", "s3://b?colour=red", "s3://b?insecure=maybe", "s3://b?cache_size=lots", "s3://b?cache_size=-1", "gs://b", ""} {
		if _, err := ParseStorage(bad); err == nil {
			t.Errorf("ParseStorage(%q) accepted", bad)
		}
	}
}

// TestFileErrors: a mistyped key names its YAML path, its line and the nearest known key; a
// value of the wrong kind says what was wanted; nothing names a Go type.
func TestFileErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"lisen: :5000\n", "line 1: unknown key lisen (did you mean listen?)"},
		{"tls:\n  certificate: x\n", "line 2: unknown key tls.certificate (did you mean tls.cert?)"},
		{"limits:\n  max_blob_byte: 1\n", "line 2: unknown key limits.max_blob_byte (did you mean limits.max_blob_bytes?)"},
		{"auth:\n  zzz: 1\n", "line 2: unknown key auth.zzz (known here: access_token_ttl,"},
		{"limits:\n  max_uploads: lots\n", `line 2: limits.max_uploads: want a whole number, not "lots"`},
		{"uploads:\n  ttl: 6 hours\n", `line 2: uploads.ttl: want a duration (500ms, 30s, 5m, 2h), not "6 hours"`},
		{"metrics:\n  enabled: maybe\n", `line 2: metrics.enabled: want true or false, not "maybe"`},
		{"limits:\n  max_blob_bytes: 10 parsecs\n", `line 2: limits.max_blob_bytes: "10 parsecs" is not a size`},
		{"network:\n  trusted_proxies: 10.0.0.1\n", `line 2: network.trusted_proxies: want a list (- item per line), not "10.0.0.1"`},
		{"tls: on\n", `line 1: tls: want a mapping of keys (acme, cert, key, reload_interval), not "on"`},
		{"listen: :1\nlisten: :2\n", "line 2: listen is set twice (first on line 1)"},
		{"listen: [a]\n", "line 1: listen: want a single value, not a list"},
	} {
		c := Default()
		err := c.LoadFile(writeFile(t, tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadFile(%q) = %v; want it to say %q", tc.body, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "config.") || strings.Contains(err.Error(), "int64")) {
			t.Errorf("LoadFile(%q) names a Go type: %v", tc.body, err)
		}
	}
	c := Default()
	if err := c.LoadFile(writeFile(t, "# nothing set\n")); err != nil {
		t.Errorf("a file of comments: %v", err)
	}
	if err := c.LoadFile(writeFile(t, "limits:\ntls:\n  cert:\n")); err != nil || c.Limits.MaxUploads != Default().Limits.MaxUploads {
		t.Errorf("keys with nothing set: %v; defaults must stay", err)
	}
}

// TestSizes: sizes take units in the file and the environment alike.
func TestSizes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Size
	}{{"512", 512}, {"16KiB", 16 << 10}, {"4MiB", 4 << 20}, {"64GiB", 64 << 30}, {"1TiB", 1 << 40}, {"10gib", 10 << 30},
		{"4 MiB", 4 << 20}, {"1MB", 1_000_000}, {"2kB", 2000}, {"3G", 3 << 30}} {
		if got, err := ParseSize(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1.5GiB", "4 parsecs", "99999999999TiB"} {
		if got, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) = %d; want an error", bad, got)
		}
	}
	c := Default()
	if err := c.LoadFile(writeFile(t, "limits:\n  max_blob_bytes: 10GiB\n  min_body_rate: 32KiB\n")); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"BERTH_LIMITS_MAX_HEADER_BYTES": "128KiB"}
	if err := c.LoadEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.Limits.MaxBlobBytes != 10<<30 || c.Limits.MinBodyRate != 32<<10 || c.Limits.MaxHeaderBytes != 128<<10 {
		t.Errorf("sizes: %+v", c.Limits)
	}
	if s := Size(64 << 30).String(); s != "64GiB" {
		t.Errorf("Size.String = %q", s)
	}
}

// TestExampleConfig: deploy/berth.example.yaml sets every key there is, each to its default,
// so it documents them all and says the truth about the defaults.
func TestExampleConfig(t *testing.T) {
	const path = "../../deploy/berth.example.yaml"
	c := Default()
	if err := c.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("the example's values differ from the defaults:\n got %+v\nwant %+v", c, Default())
	}
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	inFile := map[string]bool{}
	var collect func(n *yaml.Node, prefix string)
	collect = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := join(prefix, n.Content[i].Value)
			inFile[key] = true
			if n.Content[i+1].Kind == yaml.MappingNode {
				collect(n.Content[i+1], key)
			}
		}
	}
	collect(doc.Content[0], "")
	var missing []string
	var walkKeys func(t reflect.Type, prefix string)
	walkKeys = func(t reflect.Type, prefix string) {
		for _, k := range keysOf(t) {
			f, _ := fieldByTag(reflect.New(t).Elem(), k)
			if f.Kind() == reflect.Struct && f.Type() != sizeType {
				walkKeys(f.Type(), join(prefix, k))
			} else if !inFile[join(prefix, k)] {
				missing = append(missing, join(prefix, k))
			}
		}
	}
	walkKeys(reflect.TypeOf(Config{}), "")
	if len(missing) > 0 {
		t.Errorf("keys missing from %s: %v", path, missing)
	}
}
