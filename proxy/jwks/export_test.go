package jwks

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/devissuer"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/faultidp"
)

// exportedKIDs parses an exported set, checks every key is a valid public
// key, and returns the key ids in order.
func exportedKIDs(t *testing.T, set config.JSONWebKeySet) []string {
	t.Helper()
	kids := make([]string, 0, len(set.Keys))
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			t.Fatalf("got unparsable exported key %s: %v", raw, err)
		}
		if msg := config.CheckPublicSigningKey(&k); msg != "" {
			t.Fatalf("got exported key %s refused: %s", k.KeyID, msg)
		}
		kids = append(kids, k.KeyID)
	}
	return kids
}

func TestExportInlineAndRemote(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	inlineSet := idp.Issuer.PublicJWKS()
	f := newKeySet(t, issuerConfig(idp.URL, inline(inlineSet)))
	inlineKIDs := []string{idp.Issuer.KeyID(devissuer.ES256), idp.Issuer.KeyID(devissuer.RS256)}
	if got := exportedKIDs(t, f.ks.Export()); !slices.Equal(got, inlineKIDs) {
		t.Fatalf("got kids %v before any fetch, want the inline %v", got, inlineKIDs)
	}
	if n := idp.Hits(faultidp.JWKS); n != 0 {
		t.Fatalf("got %d jwks requests from Export, want 0", n)
	}

	// The remote set shares the RS256 key and adds a rotated ES256 key.
	newES, err := idp.Issuer.RotateKey(devissuer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(append(slices.Clone(inlineKIDs), newES)))
	first := f.ks.Export()
	if got := exportedKIDs(t, first); !slices.Equal(got, want) {
		t.Fatalf("got kids %v, want %v sorted with the shared key once", got, want)
	}
	again := f.ks.Export()
	a, _ := json.Marshal(first)
	b, _ := json.Marshal(again)
	if !bytes.Equal(a, b) {
		t.Fatalf("got exports %s and %s, want equal bytes", a, b)
	}

	// Stale remote keys are no longer exported; the inline ones are.
	idp.Set(faultidp.JWKS, faultidp.Down)
	f.clk.Advance(24*time.Hour + time.Second)
	if got := exportedKIDs(t, f.ks.Export()); !slices.Equal(got, inlineKIDs) {
		t.Fatalf("got kids %v with a stale remote set, want the inline %v", got, inlineKIDs)
	}
}

func TestExportHasNoPrivatePartsAndVerifies(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	f := newKeySet(t, issuerConfig(idp.URL))
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	set := f.ks.Export()
	for _, raw := range set.Keys {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := m[private]; ok {
				t.Fatalf("got member %q in exported key %s, want public keys only", private, raw)
			}
		}
	}
	// The export, used as an inline set, verifies the issuer's tokens.
	g := newKeySet(t, issuerConfig(idp.URL, noRemote, inline(set)))
	mustVerify(t, g.ks, mint(t, idp.Issuer))
	mustVerify(t, g.ks, mint(t, idp.Issuer, devissuer.WithAlg(devissuer.ES256)))
}

func TestExportWithoutKeysIsEmpty(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	f := newKeySet(t, issuerConfig(srv.URL))
	_ = f.ks.Refresh(t.Context())
	got, err := json.Marshal(f.ks.Export())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `{"keys":[]}` {
		t.Fatalf("got %s, want an empty key list", got)
	}
}

func TestExportFiltersByAlgorithms(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	f := newKeySet(t, issuerConfig(idp.URL, func(i *config.Issuer) { i.Algorithms = []string{devissuer.ES256} }))
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := exportedKIDs(t, f.ks.Export()), []string{idp.Issuer.KeyID(devissuer.ES256)}; !slices.Equal(got, want) {
		t.Fatalf("got kids %v, want only the ES256 key %v", got, want)
	}
}
