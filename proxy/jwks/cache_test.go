package jwks

import (
	"net/http"
	"testing"
	"time"

	"github.com/authgate/authgate/test/faultidp"
)

func TestFreshness(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	date := now.Add(-time.Hour).Format(http.TimeFormat)
	tests := []struct {
		name   string
		header http.Header
		want   lifetime
	}{
		{"nothing", http.Header{}, lifetime{}},
		{"max-age", http.Header{"Cache-Control": {"public, max-age=300"}}, lifetime{5 * time.Minute, true}},
		{"max-age case and spaces", http.Header{"Cache-Control": {" Public ,  MAX-AGE=60 "}}, lifetime{time.Minute, true}},
		{"quoted max-age", http.Header{"Cache-Control": {`max-age="60"`}}, lifetime{time.Minute, true}},
		{"max-age zero", http.Header{"Cache-Control": {"max-age=0"}}, lifetime{0, true}},
		{"first max-age wins", http.Header{"Cache-Control": {"max-age=60", "max-age=600"}}, lifetime{time.Minute, true}},
		{"invalid max-age is stale", http.Header{"Cache-Control": {"max-age=-5"}}, lifetime{0, true}},
		{"garbage max-age is stale", http.Header{"Cache-Control": {"max-age=1e9"}}, lifetime{0, true}},
		{"huge max-age capped", http.Header{"Cache-Control": {"max-age=99999999999999999999999"}}, lifetime{maxDeltaSeconds * time.Second, true}},
		{"no-store", http.Header{"Cache-Control": {"max-age=600, no-store"}}, lifetime{0, true}},
		{"no-cache", http.Header{"Cache-Control": {"no-cache"}}, lifetime{0, true}},
		{"other directives only", http.Header{"Cache-Control": {"public, must-revalidate"}}, lifetime{}},
		{"s-maxage ignored", http.Header{"Cache-Control": {"s-maxage=600"}}, lifetime{}},
		{"max-age less age", http.Header{"Cache-Control": {"max-age=600"}, "Age": {"100"}}, lifetime{500 * time.Second, true}},
		{"age beyond max-age", http.Header{"Cache-Control": {"max-age=60"}, "Age": {"100"}}, lifetime{0, true}},
		{"invalid age ignored", http.Header{"Cache-Control": {"max-age=60"}, "Age": {"soon"}}, lifetime{time.Minute, true}},
		{"max-age beats expires", http.Header{"Cache-Control": {"max-age=60"}, "Expires": {now.Add(time.Hour).Format(http.TimeFormat)}}, lifetime{time.Minute, true}},
		{"expires against now", http.Header{"Expires": {now.Add(2 * time.Hour).Format(http.TimeFormat)}}, lifetime{2 * time.Hour, true}},
		{"expires against date", http.Header{"Expires": {now.Format(http.TimeFormat)}, "Date": {date}}, lifetime{time.Hour, true}},
		{"expires in the past", http.Header{"Expires": {now.Add(-time.Hour).Format(http.TimeFormat)}}, lifetime{0, true}},
		{"invalid expires", http.Header{"Expires": {"0"}}, lifetime{0, true}},
		{"far expires capped", http.Header{"Expires": {"Fri, 31 Dec 9999 23:59:59 GMT"}, "Date": {"Thu, 01 Jan 1970 00:00:00 GMT"}}, lifetime{maxDeltaSeconds * time.Second, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := freshness(tc.header, now); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestStatusReportsMaxAge(t *testing.T) {
	t.Parallel()
	idp := faultidp.New(t)
	idp.SetCacheControl("") // no cache headers at first
	f := newKeySet(t, issuerConfig(idp.URL))
	if st := f.ks.Status(); st.HasMaxAge || st.MaxAge != 0 {
		t.Fatalf("got max-age %v (known %v) before any fetch, want none", st.MaxAge, st.HasMaxAge)
	}
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := f.ks.Status(); st.HasMaxAge || st.MaxAge != 0 {
		t.Fatalf("got max-age %v (known %v) without cache headers, want none", st.MaxAge, st.HasMaxAge)
	}
	idp.SetCacheControl("public, max-age=120")
	if err := f.ks.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := f.ks.Status(); !st.HasMaxAge || st.MaxAge != 2*time.Minute {
		t.Fatalf("got max-age %v (known %v), want 2m", st.MaxAge, st.HasMaxAge)
	}
	// A failed fetch keeps the lifetime of the response whose keys are used.
	idp.Set(faultidp.JWKS, faultidp.Down)
	if err := f.ks.Refresh(t.Context()); err == nil {
		t.Fatal("got no error from a down endpoint, want one")
	}
	if st := f.ks.Status(); !st.HasMaxAge || st.MaxAge != 2*time.Minute {
		t.Fatalf("got max-age %v (known %v) after a failure, want the last good 2m", st.MaxAge, st.HasMaxAge)
	}
}

// FuzzFreshness feeds arbitrary cache headers: never a panic, never a
// negative or uncapped lifetime.
func FuzzFreshness(f *testing.F) {
	f.Add("public, max-age=300", "", "", "")
	f.Add(`max-age="60", no-cache`, "10", "", "")
	f.Add("", "", "Wed, 01 Jan 2031 00:00:00 GMT", "Wed, 01 Jan 2030 00:00:00 GMT")
	f.Add("max-age=99999999999999999999", "-1", "0", "garbage")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, cc, age, expires, date string) {
		h := http.Header{"Cache-Control": {cc}, "Age": {age}, "Expires": {expires}, "Date": {date}}
		got := freshness(h, now)
		if got.maxAge < 0 || got.maxAge > maxDeltaSeconds*time.Second {
			t.Fatalf("got lifetime %v, want within [0, cap]", got.maxAge)
		}
		if !got.known && got.maxAge != 0 {
			t.Fatalf("got lifetime %v without a declaration, want 0", got.maxAge)
		}
	})
}
