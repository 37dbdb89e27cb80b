package reconcile

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ok := Request{Source: "meta", FormID: "555", Since: now.Add(-time.Hour), Reason: "missed"}
	for _, tc := range []struct {
		name    string
		edit    func(r *Request)
		wantErr string
	}{
		{"ok, until defaults to now", func(*Request) {}, ""},
		{"no source", func(r *Request) { r.Source = " " }, "source is required"},
		{"form with a slash", func(r *Request) { r.FormID = "555/leads" }, "form_id"},
		{"no reason", func(r *Request) { r.Reason = "" }, "reason is required"},
		{"no since", func(r *Request) { r.Since = time.Time{} }, "since is required"},
		{"until before since", func(r *Request) { r.Until = r.Since.Add(-time.Second) }, "until must be after since"},
		{"window too long", func(r *Request) { r.Since = now.Add(-91 * 24 * time.Hour) }, "window longer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.edit(&r)
			err := r.validate(now, 90*24*time.Hour)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tc.wantErr == "" && !r.Until.Equal(now):
				t.Errorf("until: got %v, want now", r.Until)
			case tc.wantErr != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("got %v, want ErrInvalid with %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseForms(t *testing.T) {
	got, err := ParseForms([]string{"meta:555", " meta:556:104 ", ""})
	if err != nil || len(got) != 2 || got[0] != (Form{Source: "meta", FormID: "555"}) || got[1] != (Form{Source: "meta", FormID: "556", PageID: "104"}) {
		t.Errorf("got %+v %v", got, err)
	}
	for _, bad := range []string{"meta", ":555", "meta:", "a:b:c:d"} {
		if _, err := ParseForms([]string{bad}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
