package client

// The wire format of ACR's metadata API, /acr/v1/ on a registry's login server (what az acr
// repository and az acr manifest call): berth serves it, and the CLI reads it.

// ChangeableAttributes are the locks of a repository, a tag or a manifest.
type ChangeableAttributes struct {
	DeleteEnabled bool `json:"deleteEnabled"`
	WriteEnabled  bool `json:"writeEnabled"`
	ReadEnabled   bool `json:"readEnabled"`
	ListEnabled   bool `json:"listEnabled"`
}

// ChangeableAttributesUpdate changes some locks; nil fields stay.
type ChangeableAttributesUpdate struct {
	DeleteEnabled *bool `json:"deleteEnabled,omitempty"`
	WriteEnabled  *bool `json:"writeEnabled,omitempty"`
	ReadEnabled   *bool `json:"readEnabled,omitempty"`
	ListEnabled   *bool `json:"listEnabled,omitempty"`
}

// RepositoryAttributes is az acr repository show --repository's reply.
type RepositoryAttributes struct {
	Registry             string               `json:"registry"`
	ImageName            string               `json:"imageName"`
	CreatedTime          string               `json:"createdTime"`
	LastUpdateTime       string               `json:"lastUpdateTime"`
	ManifestCount        int64                `json:"manifestCount"`
	TagCount             int64                `json:"tagCount"`
	ChangeableAttributes ChangeableAttributes `json:"changeableAttributes"`
}

// TagAttributes is one tag.
type TagAttributes struct {
	Name                 string               `json:"name"`
	Digest               string               `json:"digest"`
	CreatedTime          string               `json:"createdTime"`
	LastUpdateTime       string               `json:"lastUpdateTime"`
	Signed               bool                 `json:"signed"`
	ChangeableAttributes ChangeableAttributes `json:"changeableAttributes"`
}

// TagList is a page of a repository's tags.
type TagList struct {
	Registry  string          `json:"registry"`
	ImageName string          `json:"imageName"`
	Tags      []TagAttributes `json:"tags"`
}

// TagReply is one tag of a repository.
type TagReply struct {
	Registry  string        `json:"registry"`
	ImageName string        `json:"imageName"`
	Tag       TagAttributes `json:"tag"`
}

// ManifestAttributes is one manifest: az acr manifest list-metadata's items.
type ManifestAttributes struct {
	Digest         string `json:"digest"`
	ImageSize      int64  `json:"imageSize"`
	CreatedTime    string `json:"createdTime"`
	LastUpdateTime string `json:"lastUpdateTime"`
	MediaType      string `json:"mediaType"`
	// ConfigMediaType, Architecture and OS describe an image manifest (its config, and the
	// platform read from it); absent for an index or an artifact.
	ConfigMediaType string `json:"configMediaType,omitempty"`
	Architecture    string `json:"architecture,omitempty"`
	OS              string `json:"os,omitempty"`
	// ArtifactType and Subject are berth's: the OCI artifact type, and the manifest a referrer
	// (a signature, an SBOM) refers to.
	ArtifactType         string               `json:"artifactType,omitempty"`
	Subject              string               `json:"subject,omitempty"`
	Tags                 []string             `json:"tags"`
	ChangeableAttributes ChangeableAttributes `json:"changeableAttributes"`
}

// ManifestList is a page of a repository's manifests.
type ManifestList struct {
	Registry  string               `json:"registry"`
	ImageName string               `json:"imageName"`
	Manifests []ManifestAttributes `json:"manifests"`
}

// ManifestReply is one manifest of a repository.
type ManifestReply struct {
	Registry  string             `json:"registry"`
	ImageName string             `json:"imageName"`
	Manifest  ManifestAttributes `json:"manifest"`
}

// DeletedRepository is what deleting a repository removed.
type DeletedRepository struct {
	ManifestsDeleted []string `json:"manifestsDeleted"`
	TagsDeleted      []string `json:"tagsDeleted"`
}

// Usage is az acr show-usage's reply: what a registry holds.
type Usage struct {
	Value []UsageItem `json:"value"`
}

// UsageItem is one figure: Size in bytes, or a count. Limit is null: berth sets no quota.
type UsageItem struct {
	Name         string `json:"name"`
	Limit        *int64 `json:"limit"`
	CurrentValue int64  `json:"currentValue"`
	Unit         string `json:"unit"`
}

// DeletedManifest is a soft-deleted manifest: az acr manifest list-deleted's items.
type DeletedManifest struct {
	Digest       string   `json:"digest"`
	MediaType    string   `json:"mediaType"`
	ArtifactType string   `json:"artifactType,omitempty"`
	Subject      string   `json:"subject,omitempty"`
	Size         int64    `json:"size"`
	Tags         []string `json:"tags"`
	CreatedTime  string   `json:"createdTime"`
	DeletedTime  string   `json:"deletedTime"`
	// PurgeTime is when it goes for good.
	PurgeTime string `json:"purgeTime"`
}

// DeletedManifestList is a repository's soft-deleted manifests, the most recently deleted first.
type DeletedManifestList struct {
	Registry  string            `json:"registry"`
	ImageName string            `json:"imageName"`
	Manifests []DeletedManifest `json:"manifests"`
}

// DeletedTag is a tag a soft-deleted manifest had.
type DeletedTag struct {
	Tag         string `json:"tag"`
	Digest      string `json:"digest"`
	DeletedTime string `json:"deletedTime"`
}

// DeletedTagList is a repository's deleted tags.
type DeletedTagList struct {
	Registry  string       `json:"registry"`
	ImageName string       `json:"imageName"`
	Tags      []DeletedTag `json:"tags"`
}
