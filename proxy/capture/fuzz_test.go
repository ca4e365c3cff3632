package capture_test

import (
	"testing"

	"github.com/authgate/authgate/proxy/capture"
)

// FuzzParseRedirect: whatever the flag says, a parsed redirect is valid on
// its own and prints back to itself.
func FuzzParseRedirect(f *testing.F) {
	for _, s := range []string{"8080=8090", " 8082 = 8080 ", "0=1", "65535=1", "1=65536", "=", "a=b", "8080=8080"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := capture.ParseRedirect(s)
		if err != nil {
			return
		}
		if err := capture.Validate([]capture.Redirect{r}); err != nil {
			t.Fatalf("ParseRedirect(%q) = %v, which Validate refuses: %v", s, r, err)
		}
		if back, err := capture.ParseRedirect(r.String()); err != nil || back != r {
			t.Fatalf("ParseRedirect(%q).String() = %q does not parse back: %v, %v", s, r.String(), back, err)
		}
	})
}
