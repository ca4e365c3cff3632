package bundle

import (
	"reflect"
	"strings"

	"github.com/authgate/authgate/proxy/config"
)

var (
	typeOfConfig   = reflect.TypeFor[config.ProxyConfig]()
	typeOfDuration = reflect.TypeFor[config.Duration]()
)

// prune removes, guided by the Go type v was encoded from, the fields that
// decode to their zero value anyway: durations of "0s" and struct-valued
// (not pointer) fields encoded as {}. Pointer fields are kept even when
// empty, since their presence means something (requireMFA: {} requires
// MFA, apiKeys: {} accepts keys), and map values are never touched (a
// label's value may be anything).
func prune(v any, t reflect.Type) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok || t == typeOfDuration {
			return v
		}
		for i := range t.NumField() {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			val, present := obj[name]
			if !present || name == "" || name == "-" {
				continue
			}
			if sf.Type == typeOfDuration && val == "0s" {
				delete(obj, name)
				continue
			}
			val = prune(val, sf.Type)
			if sub, isObj := val.(map[string]any); isObj && len(sub) == 0 && sf.Type.Kind() == reflect.Struct {
				delete(obj, name)
				continue
			}
			obj[name] = val
		}
		return obj
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok || t.Elem().Kind() == reflect.Uint8 { // RawJSON is kept verbatim
			return v
		}
		for i := range arr {
			arr[i] = prune(arr[i], t.Elem())
		}
		return arr
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return v
		}
		for k, val := range obj {
			obj[k] = prune(val, t.Elem())
		}
		return obj
	}
	return v
}
