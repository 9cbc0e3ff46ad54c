package oci

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParseManifest parses and validates an image manifest of 10 layers with annotations.
func BenchmarkParseManifest(b *testing.B) {
	var layers []string
	for i := range 10 {
		layers = append(layers, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%064x","size":%d}`, i+1, 1000+i))
	}
	body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
		"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":1234},
		"layers":[` + strings.Join(layers, ",") + `],
		"annotations":{"org.opencontainers.image.created":"2026-11-23T00:00:00Z","org.opencontainers.image.source":"https://example.com/app"}}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := ParseManifest("application/vnd.oci.image.manifest.v1+json", body)
		if err != nil {
			b.Fatal(err)
		}
		if len(m.Blobs) != 11 {
			b.Fatalf("%d blobs", len(m.Blobs))
		}
	}
}
