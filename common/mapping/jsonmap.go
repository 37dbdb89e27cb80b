package mapping

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/leadpipe/leadpipe/common/event"
)

// normalizeJSONMap maps any JSON body by the source's fields (target -> dot path). A path
// that is absent leaves its target unset; a path that leads to an object or array is a
// schema mismatch.
func normalizeJSONMap(s *Source, body []byte, _ http.Header, _ time.Time) ([]event.Event, error) {
	var root any
	if err := decodeObject(body, &root); err != nil {
		return nil, err
	}
	if _, ok := root.(map[string]any); !ok {
		return nil, unusable(ErrSchemaMismatch, nil, "body is not a JSON object")
	}
	var ev event.Event
	// Fixed order, so the same body fails the same way whatever the map order.
	targets := make([]string, 0, len(s.Fields))
	for t := range s.Fields {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	for _, target := range targets {
		v, found := lookupPath(root, s.Fields[target])
		if !found {
			continue
		}
		str, ok := scalarString(v)
		if !ok {
			return nil, unusable(ErrSchemaMismatch, &ev, "path for %s is not a scalar", target)
		}
		if str == "" {
			continue
		}
		if (target == "source_event_id" || target == "event_type") && (strings.Contains(str, "|") || len(str) > 256) {
			return nil, unusable(ErrSchemaMismatch, &ev, "%s is not an id", target)
		}
		if err := setTarget(&ev, target, str); err != nil {
			err.(*draftError).partial = &ev
			return nil, err
		}
	}
	return []event.Event{ev}, nil
}

// lookupPath follows a dot path through decoded JSON; numeric segments index arrays.
func lookupPath(v any, path string) (any, bool) {
	for _, seg := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			next, ok := x[seg]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}
