package oci

// Manifest media types berth accepts.
const (
	MediaTypeImageManifest      = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeImageIndex         = "application/vnd.oci.image.index.v1+json"
	MediaTypeArtifactManifest   = "application/vnd.oci.artifact.manifest.v1+json"
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"

	mediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// Other media types berth writes or recognises.
const (
	MediaTypeOctetStream = "application/octet-stream"
	MediaTypeEmptyJSON   = "application/vnd.oci.empty.v1+json"

	MediaTypeImageConfig       = "application/vnd.oci.image.config.v1+json"
	MediaTypeDockerImageConfig = "application/vnd.docker.container.image.v1+json"
)

// IsImageConfigMediaType reports whether mt is an image config, whose platform berth records.
func IsImageConfigMediaType(mt string) bool {
	return mt == MediaTypeImageConfig || mt == MediaTypeDockerImageConfig
}

// nonDistributable are layer media types whose content may live outside the registry.
var nonDistributable = map[string]bool{
	"application/vnd.oci.image.layer.nondistributable.v1.tar":      true,
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": true,
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": true,
	"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":    true,
	"application/vnd.docker.image.rootfs.foreign.diff.tar":         true,
	"application/vnd.docker.image.rootfs.foreign.diff.tar.zstd":    true,
}

// IsManifestMediaType reports whether mt is a manifest type berth stores.
func IsManifestMediaType(mt string) bool {
	switch mt {
	case MediaTypeImageManifest, MediaTypeImageIndex, MediaTypeArtifactManifest,
		MediaTypeDockerManifest, MediaTypeDockerManifestList:
		return true
	}
	return false
}

// IsIndexMediaType reports whether mt lists other manifests.
func IsIndexMediaType(mt string) bool {
	return mt == MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}
