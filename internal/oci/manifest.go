package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrManifestInvalid reports a manifest that cannot be stored.
var ErrManifestInvalid = errors.New("invalid manifest")

// MaxManifestSize is the largest manifest berth accepts: 4 MiB, the limit the distribution spec
// suggests and most registries apply.
const MaxManifestSize = 4 << 20

// Descriptor is an OCI content descriptor as it appears inside manifests and referrers lists.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       Digest            `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Data         []byte            `json:"data,omitempty"`
	Platform     json.RawMessage   `json:"platform,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
}

// Manifest is what berth keeps of a parsed manifest: its type, what it points at, and what the
// referrers API reports about it.
type Manifest struct {
	MediaType    string
	ArtifactType string // artifactType, or for an image manifest without one, the config media type
	Subject      *Descriptor
	Annotations  map[string]string
	// Config is an image manifest's config descriptor; nil for an index or an artifact manifest.
	Config *Descriptor
	// Blobs are the blobs that must be present in the repository (config and distributable layers).
	Blobs []Digest
	// Manifests are the manifests an index lists; they must be present in the repository.
	Manifests []Digest
}

type rawManifest struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *Descriptor       `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Manifests     []Descriptor      `json:"manifests"`
	Blobs         []Descriptor      `json:"blobs"` // artifact manifest
	Subject       *Descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
	FSLayers      json.RawMessage   `json:"fsLayers"` // Docker schema 1
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrManifestInvalid, fmt.Sprintf(format, args...))
}

// ParseManifest checks body as a manifest sent with the given Content-Type and returns what berth
// stores about it. contentType may be empty when the client sent none.
func ParseManifest(contentType string, body []byte) (*Manifest, error) {
	if len(body) > MaxManifestSize {
		return nil, invalid("the manifest is %d bytes; at most %d (4 MiB) are accepted", len(body), MaxManifestSize)
	}
	contentType = baseMediaType(contentType)
	var raw rawManifest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return nil, invalid("the body is not a JSON manifest: %s", jsonErr(err))
	}
	if dec.More() {
		return nil, invalid("the body has data after the JSON manifest")
	}
	mt := raw.MediaType
	switch {
	case mt != "" && contentType != "" && mt != contentType && !isGenericJSON(contentType):
		return nil, invalid("the manifest's mediaType %q differs from the Content-Type header %q", truncate(mt), truncate(contentType))
	case mt == "" && contentType != "" && !isGenericJSON(contentType):
		mt = contentType
	case mt == "":
		switch {
		case raw.Manifests != nil:
			mt = MediaTypeImageIndex
		case raw.Config != nil:
			mt = MediaTypeImageManifest
		}
	}
	if mt == mediaTypeDockerSchema1 || mt == mediaTypeDockerSchema1Signed || raw.FSLayers != nil {
		return nil, invalid("Docker schema 1 manifests are not accepted; push with a client that writes schema 2 or OCI manifests")
	}
	if !IsManifestMediaType(mt) {
		if mt == "" {
			return nil, invalid("the manifest has no mediaType and the request has no manifest Content-Type")
		}
		return nil, invalid("media type %q is not a manifest type berth stores", truncate(mt))
	}
	m := &Manifest{MediaType: mt, ArtifactType: raw.ArtifactType, Annotations: raw.Annotations}
	if raw.Subject != nil {
		if err := checkDescriptor("subject", raw.Subject); err != nil {
			return nil, err
		}
		m.Subject = raw.Subject
	}
	if mt != MediaTypeArtifactManifest {
		if raw.SchemaVersion == nil || *raw.SchemaVersion != 2 {
			return nil, invalid("schemaVersion must be 2")
		}
	}
	switch mt {
	case MediaTypeImageManifest, MediaTypeDockerManifest:
		if raw.Manifests != nil {
			return nil, invalid("an image manifest has no manifests field")
		}
		if raw.Config == nil {
			return nil, invalid("an image manifest needs a config descriptor")
		}
		if err := checkDescriptor("config", raw.Config); err != nil {
			return nil, err
		}
		m.Config = raw.Config
		m.Blobs = append(m.Blobs, raw.Config.Digest)
		if m.ArtifactType == "" && mt == MediaTypeImageManifest {
			m.ArtifactType = raw.Config.MediaType
		}
		if err := m.addLayers("layers", raw.Layers); err != nil {
			return nil, err
		}
	case MediaTypeArtifactManifest:
		if err := m.addLayers("blobs", raw.Blobs); err != nil {
			return nil, err
		}
	case MediaTypeImageIndex, MediaTypeDockerManifestList:
		if raw.Config != nil || raw.Layers != nil {
			return nil, invalid("an index has no config or layers")
		}
		for i := range raw.Manifests {
			d := &raw.Manifests[i]
			if err := checkDescriptor(fmt.Sprintf("manifests[%d]", i), d); err != nil {
				return nil, err
			}
			m.Manifests = append(m.Manifests, d.Digest)
		}
	}
	return m, nil
}

func (m *Manifest) addLayers(field string, layers []Descriptor) error {
	for i := range layers {
		d := &layers[i]
		if err := checkDescriptor(fmt.Sprintf("%s[%d]", field, i), d); err != nil {
			return err
		}
		if len(d.URLs) > 0 || nonDistributable[d.MediaType] {
			// Foreign layers may live elsewhere; when they are pushed they are served as usual.
			continue
		}
		m.Blobs = append(m.Blobs, d.Digest)
	}
	return nil
}

func checkDescriptor(field string, d *Descriptor) error {
	if d.MediaType == "" {
		return invalid("%s has no mediaType", field)
	}
	if !validMediaType(d.MediaType) {
		return invalid("%s mediaType %q is not a media type", field, truncate(d.MediaType))
	}
	if _, err := ParseDigest(string(d.Digest)); err != nil {
		return invalid("%s digest: %v", field, err)
	}
	if d.Size < 0 {
		return invalid("%s size is negative", field)
	}
	if d.Data != nil {
		if int64(len(d.Data)) != d.Size {
			return invalid("%s data is %d bytes but size says %d", field, len(d.Data), d.Size)
		}
		if FromBytes(d.Digest.Algorithm(), d.Data) != d.Digest {
			return invalid("%s data does not match its digest", field)
		}
	}
	return nil
}

// validMediaType checks the RFC 6838 shape type/subtype with restricted-name characters.
func validMediaType(mt string) bool {
	typ, sub, ok := strings.Cut(mt, "/")
	return ok && restrictedName(typ) && restrictedName(sub)
}

func restrictedName(s string) bool {
	if s == "" || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return false
		}
		if !alnum && !strings.ContainsRune("!#$&-^_.+", rune(c)) {
			return false
		}
	}
	return true
}

// baseMediaType strips parameters such as "; charset=utf-8".
func baseMediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.TrimSpace(ct)
}

func isGenericJSON(ct string) bool { return ct == "application/json" }

func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v at byte %d", se, se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q has the wrong type (%s where %s was expected)", te.Field, te.Value, te.Type)
	}
	return err.Error()
}
