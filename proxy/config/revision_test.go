package config

import "testing"

func TestRevisionLine(t *testing.T) {
	t.Parallel()
	base := []byte("apiVersion: authgate.dev/v1alpha1\nkind: ProxyConfig\nupstream: {url: 'http://127.0.0.1:8080'}\n")
	for _, tt := range []struct {
		name string
		data []byte
		want int64
	}{
		{"none", base, 0},
		{"stamped", StampRevision(base, 1733222400123), 1733222400123},
		{"restamped", StampRevision(StampRevision(base, 5), 9), 9},
		{"removed", StampRevision(StampRevision(base, 5), 0), 0},
		{"not a number", append([]byte("revision: x\n"), base...), 0},
		{"negative", append([]byte("revision: -2\n"), base...), 0},
		{"not first", append(append([]byte{}, base...), "revision: 7\n"...), 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := HeadRevision(tt.data); got != tt.want {
				t.Fatalf("HeadRevision = %d, want %d", got, tt.want)
			}
			cfg, err := Parse(tt.data)
			if tt.name == "not a number" || tt.name == "negative" {
				if err == nil {
					t.Fatal("Parse accepted a bad revision")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Parse and the head agree on every bundle the controller writes.
			if tt.name != "not first" && cfg.Revision != tt.want {
				t.Fatalf("Parse says revision %d, the head %d", cfg.Revision, tt.want)
			}
		})
	}
}
