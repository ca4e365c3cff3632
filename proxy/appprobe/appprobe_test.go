package appprobe_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authgate/authgate/proxy/appprobe"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"fn-liveness=http://127.0.0.1:8082/_/health", true},
		{"fn-readiness=https://[::1]:8443/ready?deep=1", true},
		{"fn-startup=tcp://127.0.0.1:8080", true},
		{"fn=http://10.0.0.7:8080/health", false},      // not this pod
		{"fn=http://localhost:8080/health", false},     // a name, not loopback for sure
		{"fn=http://169.254.169.254:80/latest", false}, // metadata service
		{"fn=tcp://127.0.0.1:8080/x", false},
		{"fn=ftp://127.0.0.1:21", false},
		{"fn=http://127.0.0.1/health", false}, // no port
		{"fn=http://u:p@127.0.0.1:80/", false},
		{"Fn=http://127.0.0.1:80/", false},
		{"=http://127.0.0.1:80/", false},
		{"http://127.0.0.1:80/", false},
	} {
		p, err := appprobe.Parse(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("Parse(%q) error %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if err == nil && p.String() != tc.in {
			t.Errorf("Parse(%q).String() = %q", tc.in, p.String())
		}
	}
}

func TestHandler(t *testing.T) {
	var gotHeader, gotHost string
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHeader, gotHost = r.Header.Get("X-Probe"), r.Host
		switch r.URL.Path {
		case "/ok":
			_, _ = w.Write([]byte("secret-ish health detail"))
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "/moved":
			http.Redirect(w, r, "http://169.254.169.254/", http.StatusFound)
		}
	}))
	defer fn.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	_ = closed.Close()

	var probes []appprobe.Probe
	for _, s := range []string{
		"ok=" + fn.URL + "/ok",
		"fail=" + fn.URL + "/fail",
		"moved=" + fn.URL + "/moved",
		"tcp=tcp://" + strings.TrimPrefix(fn.URL, "http://"),
		"down=tcp://" + closedAddr,
		"gone=http://" + closedAddr + "/ok",
	} {
		p, err := appprobe.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		probes = append(probes, p)
	}
	h := appprobe.Handler(probes)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", appprobe.Path("ok"), 200},
		{"GET", appprobe.Path("fail"), 500},
		{"GET", appprobe.Path("moved"), 302}, // not followed
		{"GET", appprobe.Path("tcp"), 200},
		{"GET", appprobe.Path("down"), 503},
		{"GET", appprobe.Path("gone"), 503},
		{"GET", appprobe.Path("other"), 404},
		{"POST", appprobe.Path("ok"), 405},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		req.Host = "10.1.2.3:8091"
		req.Header.Set("X-Probe", "kubelet")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s %s = %d, want %d (%s)", tc.method, tc.path, rec.Code, tc.want, rec.Body)
		}
		if strings.Contains(rec.Body.String(), "secret-ish") {
			t.Errorf("%s %s passed the function's body on", tc.method, tc.path)
		}
		if rec.Header().Get("Location") != "" {
			t.Errorf("%s %s passed a redirect on", tc.method, tc.path)
		}
	}
	if gotHeader != "kubelet" || gotHost != "10.1.2.3:8091" {
		t.Errorf("the function saw X-Probe %q and Host %q, want the kubelet's", gotHeader, gotHost)
	}
}
