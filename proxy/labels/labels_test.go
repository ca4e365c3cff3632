package labels

import (
	"maps"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr bool
	}{
		{name: "downward api", in: "app=\"orders\"\nserving.knative.dev/service=\"orders\"\n", want: map[string]string{"app": "orders", "serving.knative.dev/service": "orders"}},
		{name: "escaped", in: `note="a\"b"`, want: map[string]string{"note": `a"b`}},
		{name: "blank lines", in: "\n\napp=\"x\"\n\n", want: map[string]string{"app": "x"}},
		{name: "empty", in: "", want: map[string]string{}},
		{name: "unquoted", in: "app=x", wantErr: true},
		{name: "no key", in: `="x"`, wantErr: true},
		{name: "no equals", in: "app", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got err %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && !maps.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseFlag(t *testing.T) {
	t.Parallel()
	got, err := ParseFlag("app=orders, tier = gold")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"app": "orders", "tier": "gold"}; !maps.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := ParseFlag("novalue"); err == nil {
		t.Fatal("got nil error for a label without =, want error")
	}
}
