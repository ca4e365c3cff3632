package translate

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/proxy/config"
)

func TestRefreshKeys(t *testing.T) {
	secret := func(name, key string) corev1.Secret {
		return corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Data: map[string][]byte{"key": []byte(key)}}
	}
	stale := &Fragment{
		Policy: config.Policy{Name: "ns/p", Authentication: config.Authentication{APIKeys: &config.APIKeyAccess{Keys: []string{"ns/a", "ns/b"}}}},
		APIKeys: []config.APIKey{
			{Name: "ns/a", Subject: "a", Hash: hashKey([]byte("old-key-aaaaaaaaaaaa"))},
			{Name: "ns/b", Subject: "b", Hash: hashKey([]byte("old-key-bbbbbbbbbbbb"))},
		},
	}
	t.Run("rotated and deleted", func(t *testing.T) {
		got := RefreshKeys(stale, "ns", []corev1.Secret{secret("a", "new-key-a-0123456789-ABCDEFGH")}, nil)
		if got == nil || len(got.APIKeys) != 1 || got.APIKeys[0].Hash != hashKey([]byte("new-key-a-0123456789-ABCDEFGH")) {
			t.Fatalf("got %+v, want only a, re-hashed", got)
		}
		if keys := got.Policy.Authentication.APIKeys.Keys; len(keys) != 1 || keys[0] != "ns/a" {
			t.Fatalf("got accepted keys %v, want [ns/a]", keys)
		}
		if len(stale.Policy.Authentication.APIKeys.Keys) != 2 {
			t.Fatal("RefreshKeys modified its input")
		}
	})
	t.Run("all revoked", func(t *testing.T) {
		if got := RefreshKeys(stale, "ns", nil, nil); got != nil {
			t.Fatalf("got %+v, want nil: an empty key list would accept every key", got)
		}
	})
	t.Run("invalid secret now", func(t *testing.T) {
		if got := RefreshKeys(stale, "ns", []corev1.Secret{secret("a", "short"), secret("b", "x y z invalid key!!")}, nil); got != nil {
			t.Fatalf("got %+v, want nil", got)
		}
	})
	t.Run("no api keys", func(t *testing.T) {
		f := &Fragment{Policy: config.Policy{Name: "ns/q"}}
		if got := RefreshKeys(f, "ns", nil, nil); got != f {
			t.Fatal("a fragment without keys must be returned unchanged")
		}
	})
}
