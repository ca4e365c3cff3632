package jwks

import (
	"bytes"
	"cmp"
	"slices"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/proxy/config"
)

// Export returns the keys usable right now (the inline keys and the remote
// keys unless stale) as public JSON Web Keys, sorted by key id (then by
// encoding) with exact duplicates removed, so equal key sets export equal
// bytes. It never touches the network. Keys is empty, not nil, when no key
// is usable.
func (k *KeySet) Export() config.JSONWebKeySet {
	remote, _ := k.current(k.now())
	type entry struct {
		kid string
		raw config.RawJSON
	}
	all := make([]entry, 0, len(k.inline)+len(remote))
	for _, set := range [2][]jose.JSONWebKey{k.inline, remote} {
		for i := range set {
			raw, err := set[i].Public().MarshalJSON()
			if err != nil {
				// Keys passed usableKeys; a valid public key always marshals.
				k.log.Warn("jwks: cannot export a key", "issuer", k.name, "error", err)
				continue
			}
			all = append(all, entry{kid: set[i].KeyID, raw: raw})
		}
	}
	slices.SortFunc(all, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.kid, b.kid), bytes.Compare(a.raw, b.raw))
	})
	all = slices.CompactFunc(all, func(a, b entry) bool { return bytes.Equal(a.raw, b.raw) })
	out := config.JSONWebKeySet{Keys: make([]config.RawJSON, 0, len(all))}
	for _, e := range all {
		out.Keys = append(out.Keys, e.raw)
	}
	return out
}
