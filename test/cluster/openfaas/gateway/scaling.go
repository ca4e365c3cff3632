package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate/test/cluster/openfaas/faasnetes"
)

// functionStatus is the part of faas-provider's FunctionStatus the gateway
// reads.
type functionStatus struct {
	Replicas          uint64             `json:"replicas,omitempty"`
	AvailableReplicas uint64             `json:"availableReplicas,omitempty"`
	Labels            *map[string]string `json:"labels,omitempty"`
}

// serviceQuery is gateway/plugin/external.go GetReplicas: GET
// <provider>system/function/<name>?namespace=<ns>&usage=false, 3 s to
// connect, no keep-alive.
type serviceQuery struct {
	base   string
	client *http.Client
}

func newServiceQuery(provider *url.URL) *serviceQuery {
	return &serviceQuery{base: provider.String(), client: &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
		MaxIdleConns:          1,
		DisableKeepAlives:     true,
		IdleConnTimeout:       120 * time.Millisecond,
		ExpectContinueTimeout: 1500 * time.Millisecond,
	}}}
}

func (q *serviceQuery) getReplicas(name, ns string) (functionStatus, error) {
	var fs functionStatus
	res, err := q.client.Get(fmt.Sprintf("%ssystem/function/%s?namespace=%s&usage=false", q.base, name, ns))
	if err != nil {
		return fs, err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return fs, fmt.Errorf("server returned non-200 status code (%d) for function, %s, body: %s", res.StatusCode, name, string(body))
	}
	if err := json.Unmarshal(body, &fs); err != nil {
		return fs, err
	}
	if fs.Labels != nil {
		factor := uint64(10) // scaling.DefaultScalingFactor
		if v := (*fs.Labels)["com.openfaas.scale.factor"]; v != "" {
			if n, err := strconv.Atoi(v); err == nil {
				factor = uint64(n)
			}
		}
		if factor == 0 || factor > 100 {
			return functionStatus{}, fmt.Errorf("bad scaling factor: %d, is not in range of [0 - 100]", factor)
		}
	}
	return fs, nil
}

// scaling is gateway/handlers/scaling.go with the scaler of
// gateway/scaling/function_scaler.go, less the scaling: a function the
// provider does not know is 404 "error finding function <name>.<ns>:
// ...", an error while waiting 500; with an available replica the call goes
// on, otherwise the gateway polls (MaxPollCount × PollInterval) and then
// goes on anyway. The original first scales a function at 0 replicas up to
// its minimum; that, the 250 ms replica cache and the single-flight
// grouping of queries are not reproduced.
type scaling struct {
	next  http.Handler
	cfg   Config
	query *serviceQuery
}

func (s *scaling) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ns := splitNamespace(s.cfg.Namespace, serviceName(r.URL.String()))
	found, err := s.wait(name, ns)
	if err != nil {
		status := http.StatusInternalServerError
		if !found {
			status = http.StatusNotFound
		}
		msg := fmt.Sprintf("error finding function %s.%s: %s", name, ns, err.Error())
		s.cfg.Log.Printf("Scaling: %s\n", msg)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(msg))
		return
	}
	s.next.ServeHTTP(w, r)
}

// wait returns found=false with the first query's error, found=true with a
// later one's, or nil when the call may go on.
func (s *scaling) wait(name, ns string) (found bool, err error) {
	fs, err := s.query.getReplicas(name, ns)
	if err != nil {
		return false, err
	}
	if fs.AvailableReplicas > 0 {
		return true, nil
	}
	if fs.Replicas == 0 {
		s.cfg.Log.Printf("[Scale] function=%s.%s is at 0 replicas: scaling up is not reproduced", name, ns)
	}
	start := time.Now()
	for range s.cfg.MaxPollCount {
		fs, err := s.query.getReplicas(name, ns)
		if err != nil {
			return true, err
		}
		if fs.AvailableReplicas > 0 {
			s.cfg.Log.Printf("[Ready] function=%s waited for - %.4fs", name, time.Since(start).Seconds())
			return true, nil
		}
		time.Sleep(s.cfg.PollInterval)
	}
	return true, nil
}

// functionMatcher is gateway/pkg/middleware/resolver.go's.
var functionMatcher = regexp.MustCompile("^/?(?:async-)?function/([^/?]+)([^?]*)")

// serviceName is GetServiceName: the name part of /function/<name>/...
func serviceName(u string) string {
	if !strings.HasPrefix(u, "/function/") {
		return ""
	}
	m := functionMatcher.FindStringSubmatch(u)
	if len(m) != 3 {
		return ""
	}
	return strings.Trim(m[1], "/")
}

// splitNamespace is GetNamespace: "name.ns" → name, ns.
func splitNamespace(def, full string) (string, string) {
	if i := strings.LastIndex(full, "."); i > -1 {
		return full[:i], full[i+1:]
	}
	return full, def
}

// listWithoutMetrics is gateway/metrics/add_metrics.go without Prometheus:
// the provider's list re-encoded with invocationCount 0, its errors passed on
// through http.Error.
func listWithoutMetrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code != http.StatusOK {
			http.Error(w, string(body), rec.Code)
			return
		}
		var functions []faasnetes.FunctionStatus
		if err := json.Unmarshal(body, &functions); err != nil {
			http.Error(w, "Unable to parse list of functions from provider", http.StatusInternalServerError)
			return
		}
		for i := range functions {
			functions[i].InvocationCount = 0
		}
		out, err := json.Marshal(functions)
		if err != nil {
			http.Error(w, "Error writing response after adding metrics", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
	})
}
