package oci

import (
	"encoding/json"
	"fmt"
)

// MaxConfigSize bounds the image config berth reads at push to learn an image's platform; a
// larger config is stored as usual and its platform is left unknown.
const MaxConfigSize = 1 << 20

// maxPlatformField bounds each platform field berth keeps.
const maxPlatformField = 64

// Platform is what berth keeps of an image's platform, as ACR's manifest attributes show it:
// architecture and operating system.
type Platform struct {
	Architecture string
	OS           string
}

// ParsePlatform reads the platform of an image config. A config that is not JSON is an error;
// fields that are missing, not strings or too long are left empty.
func ParsePlatform(config []byte) (Platform, error) {
	var raw struct {
		Architecture any `json:"architecture"`
		OS           any `json:"os"`
	}
	if err := json.Unmarshal(config, &raw); err != nil {
		return Platform{}, fmt.Errorf("the image config is not JSON: %s", jsonErr(err))
	}
	field := func(v any) string {
		s, ok := v.(string)
		if !ok || len(s) > maxPlatformField || !printable(s) {
			return ""
		}
		return s
	}
	return Platform{Architecture: field(raw.Architecture), OS: field(raw.OS)}, nil
}

// printable reports whether s holds only printable ASCII (what platforms are written in).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
