package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/proxy/config"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	low := func(int64) int64 { return 0 }
	high := func(n int64) int64 { return n - 1 }
	ms := time.Millisecond
	tests := []struct {
		name   string
		int63n func(int64) int64
		calls  string // n: next, s: slow, r: reset
		want   []time.Duration
	}{
		{"lowest draws stay at min", low, "nnnnn", []time.Duration{100 * ms, 100 * ms, 100 * ms, 100 * ms, 100 * ms}},
		{"highest draws double up to max", high, "nnnnnn", []time.Duration{200 * ms, 400 * ms, 800 * ms, time.Second, time.Second, time.Second}},
		{"reset starts again from min", high, "nnnrn", []time.Duration{200 * ms, 400 * ms, 800 * ms, 200 * ms}},
		{"slow is at least max/2", low, "snn", []time.Duration{500 * ms, 100 * ms, 100 * ms}},
		{"slow is at most max", high, "sn", []time.Duration{time.Second, time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &backoff{min: 100 * ms, max: time.Second, int63n: tt.int63n}
			var got []time.Duration
			for _, op := range tt.calls {
				switch op {
				case 'n':
					got = append(got, b.next())
				case 's':
					got = append(got, b.slow())
				case 'r':
					b.reset()
				}
			}
			if !equalDurations(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBackoffHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	low := func(int64) int64 { return 0 }
	high := func(n int64) int64 { return n - 1 }
	tests := []struct {
		name   string
		int63n func(int64) int64
		d, ra  time.Duration
		want   time.Duration
	}{
		{"no Retry-After", high, time.Second, 0, time.Second},
		{"Retry-After below the delay", high, 3 * time.Second, time.Second, 3 * time.Second},
		{"Retry-After, lowest jitter", low, 100 * time.Millisecond, 4 * time.Second, 4 * time.Second},
		{"Retry-After, highest jitter", high, 100 * time.Millisecond, 4 * time.Second, 6 * time.Second},
		{"Retry-After capped at max", low, 100 * time.Millisecond, time.Hour, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &backoff{min: 100 * time.Millisecond, max: 10 * time.Second, int63n: tt.int63n}
			if got := b.atLeast(tt.d, tt.ra); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	for v, want := range map[string]time.Duration{"5": 5 * time.Second, " 30 ": 30 * time.Second, "": 0, "-1": 0, "0": 0, "soon": 0, "Wed, 21 Oct 2015 07:28:00 GMT": 0} {
		if got := retryAfter(v); got != want {
			t.Errorf("retryAfter(%q): got %v, want %v", v, got, want)
		}
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMessageLimit(t *testing.T) {
	t.Parallel()
	small := func(n int) []byte {
		b, _ := json.Marshal(pushapi.Update{Revision: int64(n), Data: bytes.Repeat([]byte{'a'}, 300)})
		return b
	}
	var many []byte
	for i := range 20 {
		many = append(many, small(i)...)
	}
	huge, _ := json.Marshal(pushapi.Update{Data: bytes.Repeat([]byte{'a'}, 5000)})
	tests := []struct {
		name    string
		stream  []byte
		want    int
		wantErr error
	}{
		{"many values, each under the limit", many, 20, io.EOF},
		{"one value over the limit", append(small(0), huge...), 1, errUpdateTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lim := &messageLimit{r: bytes.NewReader(tt.stream), max: 1024}
			dec := json.NewDecoder(lim)
			n := 0
			var err error
			for {
				var u pushapi.Update
				if err = dec.Decode(&u); err != nil {
					break
				}
				lim.mark = dec.InputOffset()
				n++
			}
			if n != tt.want || !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %d values and %v, want %d and %v", n, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestReadToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		want    string
		wantErr string
	}{
		{"trailing newline trimmed", "eyJhbGciOi.e30.c2ln\n", "eyJhbGciOi.e30.c2ln", ""},
		{"empty", "", "", "is empty"},
		{"whitespace only", " \n\t", "", "is empty"},
		{"space inside", "abc def", "", "not allowed"},
		{"CR LF inside", "abc\r\nX-Injected: 1", "", "not allowed"},
		{"NUL inside", "abc\x00def", "", "not allowed"},
		{"too large", strings.Repeat("a", maxTokenBytes+1), "", "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readToken(path)
			switch {
			case tt.wantErr == "" && (err != nil || got != tt.want):
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %q, %v; want an error holding %q", got, err, tt.wantErr)
			case err != nil && strings.TrimSpace(tt.content) != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.content)):
				t.Fatalf("error %q holds the token", err)
			}
		})
	}
	if _, err := readToken(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Fatal("got no error for a missing token file")
	}
}

func TestResponseErrorRemovesTheToken(t *testing.T) {
	t.Parallel()
	token := "sa-token-" + strings.Repeat("0123456789", 10)
	tests := []struct {
		name string
		body string
	}{
		{"token inside the bound", "bad token " + token},
		{"token across the bound", strings.Repeat("x", maxBodyLogBytes-20) + token},
		{"token twice", token + " " + token},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := &http.Response{StatusCode: http.StatusUnauthorized, Proto: "HTTP/2.0", Body: io.NopCloser(strings.NewReader(tt.body))}
			re := newResponseError(resp, token)
			if strings.Contains(re.body, token[:20]) || len(re.body) > maxBodyLogBytes {
				t.Fatalf("got body %q (%d bytes), want no part of the token and at most %d bytes", re.body, len(re.body), maxBodyLogBytes)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	data := []byte("revision: 3\npolicies: []\n")
	tests := []struct {
		name    string
		u       pushapi.Update
		wantErr bool
	}{
		{"intact", pushapi.Update{Revision: 3, Hash: config.Hash(data), Data: data}, false},
		{"hash upper case", pushapi.Update{Revision: 3, Hash: strings.ToUpper(config.Hash(data)), Data: data}, true},
		{"hash of nothing", pushapi.Update{Revision: 3, Hash: config.Hash(nil), Data: data}, true},
		{"revision differs", pushapi.Update{Revision: 4, Hash: config.Hash(data), Data: data}, true},
		{"unreadable data is the applier's to reject", pushapi.Update{Revision: 0, Hash: config.Hash([]byte("{")), Data: []byte("{")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := verify(tt.u)
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, errCorrupt)) {
				t.Fatalf("got %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
