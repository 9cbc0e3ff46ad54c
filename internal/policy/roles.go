package policy

import (
	"strings"
)

// Mode is a registry's role assignment mode: which roles its data plane honours.
type Mode uint8

// The two modes, as in ACR: rbac honours the registry-wide roles (AcrPull, AcrPush, AcrDelete,
// Owner, Contributor, Reader); rbac-abac honours the repository roles, which take conditions on
// the repository name, and leaves Owner, Contributor and Reader to the control plane.
const (
	ModeRBAC Mode = iota
	ModeRBACABAC
)

// String is the mode as the CLI and the API spell it.
func (m Mode) String() string {
	if m == ModeRBACABAC {
		return "rbac-abac"
	}
	return "rbac"
}

// ParseMode reads "rbac" or "rbac-abac" (ARM's LegacyRegistryPermissions and
// AbacRepositoryPermissions are accepted too).
func ParseMode(s string) (Mode, bool) {
	switch strings.ToLower(s) {
	case "rbac", "legacyregistrypermissions":
		return ModeRBAC, true
	case "rbac-abac", "abacrepositorypermissions":
		return ModeRBACABAC, true
	}
	return 0, false
}

// actionSet is a set of data-plane actions, one bit each.
type actionSet uint8

const (
	bitPull actionSet = 1 << iota
	bitPush
	bitDelete
	bitMetadataRead
	bitMetadataWrite
	bitCatalog
)

func (a Action) bit() actionSet {
	switch a {
	case ActionPull:
		return bitPull
	case ActionPush:
		return bitPush
	case ActionDelete:
		return bitDelete
	case ActionMetadataRead:
		return bitMetadataRead
	case ActionMetadataWrite:
		return bitMetadataWrite
	case ActionCatalog:
		return bitCatalog
	}
	return 0
}

// Data actions, as ACR names them in role definitions and in ABAC conditions.
const (
	DataContentRead    = "Microsoft.ContainerRegistry/registries/repositories/content/read"
	DataContentWrite   = "Microsoft.ContainerRegistry/registries/repositories/content/write"
	DataContentDelete  = "Microsoft.ContainerRegistry/registries/repositories/content/delete"
	DataMetadataRead   = "Microsoft.ContainerRegistry/registries/repositories/metadata/read"
	DataMetadataWrite  = "Microsoft.ContainerRegistry/registries/repositories/metadata/write"
	DataMetadataDelete = "Microsoft.ContainerRegistry/registries/repositories/metadata/delete"
	DataCatalogRead    = "Microsoft.ContainerRegistry/registries/catalog/read"
)

// DataAction is the data action a Docker scope action needs.
func DataAction(a Action) string {
	switch a {
	case ActionPull:
		return DataContentRead
	case ActionPush:
		return DataContentWrite
	case ActionDelete:
		return DataContentDelete
	case ActionMetadataRead:
		return DataMetadataRead
	case ActionMetadataWrite:
		return DataMetadataWrite
	case ActionCatalog:
		return DataCatalogRead
	}
	return ""
}

func (s actionSet) dataActions() []string {
	var out []string
	for _, a := range []Action{ActionPull, ActionMetadataRead, ActionPush, ActionMetadataWrite, ActionDelete} {
		if s&a.bit() != 0 {
			out = append(out, DataAction(a))
			if a == ActionDelete {
				out = append(out, DataMetadataDelete)
			}
		}
	}
	if s&bitCatalog != 0 {
		out = append(out, DataCatalogRead)
	}
	return out
}

// Permission is a control-plane permission: what the management API checks.
type Permission string

// The control-plane permissions. Registry settings include network rules and anonymous pull;
// credentials are the admin user's passwords, tokens and scope maps (ACR's "data access
// configuration"); the directory is users, groups and service principals.
const (
	PermRegistryRead     Permission = "registries/read"
	PermRegistryWrite    Permission = "registries/write"
	PermRegistryDelete   Permission = "registries/delete"
	PermCredentialsRead  Permission = "registries/credentials/read"
	PermCredentialsWrite Permission = "registries/credentials/write"
	// PermCredentialsList reads the admin user's passwords (ACR's listCredentials action). No
	// read-only role holds it: the passwords act on the data plane.
	PermCredentialsList  Permission = "registries/credentials/list"
	PermAssignmentsRead  Permission = "roleAssignments/read"
	PermAssignmentsWrite Permission = "roleAssignments/write"
	PermDirectoryRead    Permission = "directory/read"
	PermDirectoryWrite   Permission = "directory/write"
)

// AllPermissions lists the control-plane permissions in a stable order.
var AllPermissions = []Permission{PermRegistryRead, PermRegistryWrite, PermRegistryDelete, PermCredentialsRead,
	PermCredentialsWrite, PermCredentialsList, PermAssignmentsRead, PermAssignmentsWrite, PermDirectoryRead, PermDirectoryWrite}

// Role is a built-in role definition.
type Role struct {
	Name        string
	ID          string // ACR's role definition GUID, where it is published
	Description string
	// data holds the data-plane actions the role gives in each mode.
	data [2]actionSet
	// control holds the control-plane permissions (the same in both modes).
	control []Permission
	// Conditions reports whether assignments of the role may carry an ABAC condition.
	Conditions bool
	// Replacement, for a role that rbac-abac does not honour, names what to assign instead.
	Replacement string
}

// DataActions lists the data actions the role gives in mode m.
func (r *Role) DataActions(m Mode) []string { return r.data[m].dataActions() }

// Control lists the role's control-plane permissions.
func (r *Role) Control() []Permission { return append([]Permission(nil), r.control...) }

func (r *Role) has(p Permission) bool {
	for _, q := range r.control {
		if q == p {
			return true
		}
	}
	return false
}

// Names of the built-in roles.
const (
	RoleAcrPull               = "AcrPull"
	RoleAcrPush               = "AcrPush"
	RoleAcrDelete             = "AcrDelete"
	RoleOwner                 = "Owner"
	RoleContributor           = "Contributor"
	RoleReader                = "Reader"
	RoleRepositoryReader      = "Container Registry Repository Reader"
	RoleRepositoryWriter      = "Container Registry Repository Writer"
	RoleRepositoryContributor = "Container Registry Repository Contributor"
	RoleCatalogLister         = "Container Registry Repository Catalog Lister"
	RoleConfigurationAdmin    = "Container Registry Contributor and Data Access Configuration Administrator"
	RoleConfigurationReader   = "Container Registry Configuration Reader and Data Access Configuration Reader"
	RoleAccessControlAdmin    = "Role Based Access Control Administrator"
	readActions               = bitPull | bitMetadataRead
	writeActions              = readActions | bitPush | bitMetadataWrite
	contributeActions         = writeActions | bitDelete
	allActions                = contributeActions | bitCatalog
)

var (
	controlReadOnly = []Permission{PermRegistryRead, PermCredentialsRead, PermAssignmentsRead, PermDirectoryRead}
	controlAll      = AllPermissions
)

// Roles are the built-in role definitions, in the order `berth role definition list` shows them.
var Roles = []*Role{
	{Name: RoleAcrPull, ID: "7f951dda-4ed3-4680-a7ca-43fe172d538d", Description: "Pull artifacts, list tags and the catalog (mode rbac only).",
		data: [2]actionSet{readActions | bitCatalog, 0}, Replacement: RoleRepositoryReader + "' and '" + RoleCatalogLister},
	{Name: RoleAcrPush, ID: "8311e382-0749-4cb8-b61a-304f252e45ec", Description: "Push and pull artifacts, manage tags, list the catalog (mode rbac only).",
		data: [2]actionSet{writeActions | bitCatalog, 0}, Replacement: RoleRepositoryWriter},
	{Name: RoleAcrDelete, ID: "c2f4ef07-c644-48eb-af81-4b1b4947fb11", Description: "Delete artifacts and tags (mode rbac only).",
		data: [2]actionSet{bitDelete, 0}, Replacement: RoleRepositoryContributor},
	{Name: RoleOwner, ID: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", Description: "Manage everything, including role assignments; full data plane in mode rbac only.",
		data: [2]actionSet{allActions, 0}, control: controlAll, Replacement: RoleRepositoryContributor + "' and '" + RoleCatalogLister},
	{Name: RoleContributor, ID: "b24988ac-6180-42a0-ab88-20f7382dd24c", Description: "Manage everything but role assignments; full data plane in mode rbac only.",
		data: [2]actionSet{allActions, 0}, control: without(controlAll, PermAssignmentsWrite), Replacement: RoleRepositoryContributor + "' and '" + RoleCatalogLister},
	{Name: RoleReader, ID: "acdd72a7-3385-48ef-bd42-f606fba81ae7", Description: "Read settings; pull, list tags and the catalog in mode rbac only.",
		data: [2]actionSet{readActions | bitCatalog, 0}, control: controlReadOnly, Replacement: RoleRepositoryReader + "' and '" + RoleCatalogLister},
	{Name: RoleRepositoryReader, ID: "b93aa761-3e63-49ed-ac28-beffa264f7ac", Description: "Pull artifacts and read tags and metadata (mode rbac-abac); takes conditions on the repository name; no catalog.",
		data: [2]actionSet{0, readActions}, Conditions: true},
	{Name: RoleRepositoryWriter, ID: "2a1e307c-b015-4ebd-883e-5b7698a07328", Description: "Repository Reader, and push, tag and untag (mode rbac-abac); takes conditions; no delete, no catalog.",
		data: [2]actionSet{0, writeActions}, Conditions: true},
	{Name: RoleRepositoryContributor, ID: "2efddaa5-3f1f-4df3-97df-af3f13818f4c", Description: "Repository Writer, and delete artifacts and tags (mode rbac-abac); takes conditions; no catalog.",
		data: [2]actionSet{0, contributeActions}, Conditions: true},
	{Name: RoleCatalogLister, ID: "bfdb9389-c9a5-478a-bb2f-ba9ca092c3c7", Description: "List every repository of the registry (mode rbac-abac); takes no conditions.",
		data: [2]actionSet{0, bitCatalog}},
	{Name: RoleConfigurationAdmin, ID: "3bc748fc-213d-45c1-8d91-9da5725539b9", Description: "Create and configure registries, their authentication (admin user, tokens, scope maps), network access and anonymous pull; no data plane, no role assignments.",
		control: []Permission{PermRegistryRead, PermRegistryWrite, PermRegistryDelete, PermCredentialsRead, PermCredentialsWrite, PermCredentialsList}},
	{Name: RoleConfigurationReader, ID: "69b07be0-09bf-439a-b9a6-e73de851bd59", Description: "Read registries' configuration, authentication settings and network rules; no data plane.",
		control: []Permission{PermRegistryRead, PermCredentialsRead}},
	{Name: RoleAccessControlAdmin, ID: "f58310d9-a9f6-439a-9e8d-f62e7b41a168", Description: "Manage role assignments and read everything else; no data plane.",
		control: []Permission{PermRegistryRead, PermCredentialsRead, PermAssignmentsRead, PermAssignmentsWrite, PermDirectoryRead}},
}

func without(ps []Permission, drop Permission) []Permission {
	var out []Permission
	for _, p := range ps {
		if p != drop {
			out = append(out, p)
		}
	}
	return out
}

// RoleByName finds a built-in role by name (any case) or by id.
func RoleByName(name string) (*Role, bool) {
	for _, r := range Roles {
		if strings.EqualFold(r.Name, name) || (r.ID != "" && strings.EqualFold(r.ID, name)) {
			return r, true
		}
	}
	return nil, false
}
