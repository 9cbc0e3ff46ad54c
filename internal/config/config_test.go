package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
		{"events retention", func(c *Config) { c.Events.Retention = time.Minute }, "events.retention"},
		{"events queue", func(c *Config) { c.Events.Queue = 0 }, "events.queue"},
		{"unknown storage", func(c *Config) { c.Storage = "gcs://b" }, "storage"},
		{"s3 credentials in the URL", func(c *Config) { c.Storage = "s3://key:secret@bucket" }, "credentials"},
		{"log level", func(c *Config) { c.Log.Level = "loud" }, "log.level"},
		{"empty listen", func(c *Config) { c.Listen = "" }, "listen"},
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
	st, err := ParseStorage("s3://bucket/some/prefix?endpoint=127.0.0.1:9000&region=eu-west-1&insecure=true&path_style=true&redirect=true&create_bucket=false&profile=p&credentials_file=/c")
	if c := st.S3; err != nil || c == nil || st.FSPath != "" || c.Bucket != "bucket" || c.Prefix != "some/prefix/" || c.Endpoint != "127.0.0.1:9000" ||
		c.Region != "eu-west-1" || !c.Insecure || !c.PathStyle || !c.Redirect || c.CreateBucket || c.Profile != "p" || c.CredentialsFile != "/c" {
		t.Errorf("ParseStorage = %+v %+v, %v", st, st.S3, err)
	}
	if st, err := ParseStorage("s3://b"); err != nil || st.S3.Prefix != "" || st.S3.Insecure {
		t.Errorf("bare bucket: %+v, %v", st, err)
	}
	if st, err := ParseStorage("fs:/var/lib/berth/blobs"); err != nil || st.FSPath != "/var/lib/berth/blobs" || st.S3 != nil {
		t.Errorf("fs: %+v, %v", st, err)
	}
	for _, bad := range []string{"fs:", "/x", "s3://", "s3://key:secret@bucket", "s3://b?colour=red", "s3://b?insecure=maybe", "gs://b", ""} {
		if _, err := ParseStorage(bad); err == nil {
			t.Errorf("ParseStorage(%q) accepted", bad)
		}
	}
}
