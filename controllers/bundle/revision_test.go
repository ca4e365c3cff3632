package bundle

import (
	"testing"

	"github.com/authgate/authgate/proxy/config"
)

func TestStampAndRevision(t *testing.T) {
	t.Parallel()
	data, err := Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []byte
		rev  int64
		want int64
	}{
		{"unstamped stays as it is at 0", data, 0, 0},
		{"stamped", data, 1733222400123, 1733222400123},
		{"restamped", Stamp(data, 5), 7, 7},
		{"stamp removed", Stamp(data, 5), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Stamp(tt.in, tt.rev)
			if r := Revision(got); r != tt.want {
				t.Fatalf("Revision(Stamp(…, %d)) = %d, want %d", tt.rev, r, tt.want)
			}
			cfg, err := config.Parse(got)
			if err != nil {
				t.Fatalf("the stamped bundle does not parse as a ProxyConfig: %v\n%s", err, got)
			}
			if cfg.Revision != tt.want {
				t.Fatalf("ProxyConfig.Revision = %d, want %d", cfg.Revision, tt.want)
			}
			if string(Stamp(got, 0)) != string(data) {
				t.Fatalf("content changed:\n%s\nwant\n%s", Stamp(got, 0), data)
			}
		})
	}
	if Revision([]byte("{not yaml")) != 0 || Revision([]byte("revision: -3\n")) != 0 {
		t.Fatal("a bundle without a revision line, or a negative revision, must read as 0")
	}
}

func TestNext(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ cur, now, want int64 }{
		{0, 1000, 1000},    // a new Secret: from the clock
		{1000, 1000, 1001}, // two writes in one millisecond
		{5000, 1000, 5001}, // the clock went back: still above
		{1000, 9000, 9000},
	} {
		if got := Next(tt.cur, tt.now); got != tt.want {
			t.Errorf("Next(%d, %d) = %d, want %d", tt.cur, tt.now, got, tt.want)
		}
	}
}
