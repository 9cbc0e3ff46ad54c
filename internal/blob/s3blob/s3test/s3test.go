// Package s3test gives a test a place of its own on the S3 server that BERTH_TEST_S3 names
// (scripts/minio.sh starts one), as pgtest does for PostgreSQL.
package s3test

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
)

// URL returns the storage URL of BERTH_TEST_S3 with a key prefix of its own, NAME-RANDOM, below
// the one it names. Without BERTH_TEST_S3 the test is skipped, unless BERTH_REQUIRE_S3=1 (as
// in CI), where that is a failure.
func URL(t testing.TB, name string) string {
	t.Helper()
	raw := os.Getenv("BERTH_TEST_S3")
	if raw == "" {
		if os.Getenv("BERTH_REQUIRE_S3") == "1" {
			t.Fatal("BERTH_TEST_S3 is not set: start MinIO with scripts/minio.sh")
		}
		t.Skip("no S3 server: set BERTH_TEST_S3 (scripts/minio.sh start DIR prints it)")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Fatalf("BERTH_TEST_S3=%q is not an s3://BUCKET URL: %v", raw, err)
	}
	var b [6]byte
	rand.Read(b[:])
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + name + "-" + hex.EncodeToString(b[:])
	return u.String()
}
