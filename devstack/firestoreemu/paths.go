package firestoreemu

import (
	"strings"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
)

// docName is a parsed document name:
// projects/{p}/databases/{d}/documents/{coll}/{id}[/{coll}/{id}...].
type docName struct {
	db   string   // projects/{p}/databases/{d}
	segs []string // path segments after "documents"
}

func (n docName) full() string {
	return n.db + "/documents/" + strings.Join(n.segs, "/")
}

// parent returns the name of the collection holding the document,
// e.g. projects/p/databases/d/documents/users.
func (n docName) collection() string {
	return n.db + "/documents/" + strings.Join(n.segs[:len(n.segs)-1], "/")
}

func (n docName) collectionID() string { return n.segs[len(n.segs)-2] }

// splitDB splits a resource name into its database and the path after
// "documents" (which may be empty for the database root).
func splitDB(name string) (db string, rest []string, err error) {
	parts := strings.Split(name, "/")
	if len(parts) < 5 || parts[0] != "projects" || parts[2] != "databases" || parts[4] != "documents" || parts[1] == "" || parts[3] == "" {
		return "", nil, invalidArg("invalid resource name %q", name)
	}
	db = strings.Join(parts[:4], "/")
	rest = parts[5:]
	for _, s := range rest {
		if s == "" || s == "." || s == ".." || (len(s) > 4 && strings.HasPrefix(s, "__") && strings.HasSuffix(s, "__")) {
			return "", nil, invalidArg("invalid path segment %q in %q", s, name)
		}
		if len(s) > 1500 {
			return "", nil, invalidArg("path segment too long in %q", name)
		}
	}
	return db, rest, nil
}

func parseDocName(name string) (docName, error) {
	db, rest, err := splitDB(name)
	if err != nil {
		return docName{}, err
	}
	if len(rest) == 0 || len(rest)%2 != 0 {
		return docName{}, invalidArg("Document name %q has odd number of segments or is not a document", name)
	}
	return docName{db: db, segs: rest}, nil
}

// parseParent parses a query/list parent: the database root
// (".../documents") or a document.
func parseParent(name string) (db string, parentPath string, err error) {
	db, rest, err := splitDB(name)
	if err != nil {
		return "", "", err
	}
	if len(rest)%2 != 0 {
		return "", "", invalidArg("parent %q is not a document or the database root", name)
	}
	return db, strings.TrimSuffix(name, "/"), nil
}

// parseFieldPath splits a field path such as a.b.`c.d`.`x\`y` into segments.
func parseFieldPath(p string) ([]string, error) {
	if p == "" {
		return nil, invalidArg("empty field path")
	}
	var segs []string
	var cur strings.Builder
	quoted, wasQuoted := false, false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case quoted && c == '\\' && i+1 < len(p):
			i++
			cur.WriteByte(p[i])
		case c == '`':
			quoted = !quoted
			wasQuoted = true
		case c == '.' && !quoted:
			if cur.Len() == 0 && !wasQuoted {
				return nil, invalidArg("invalid field path %q", p)
			}
			segs = append(segs, cur.String())
			cur.Reset()
			wasQuoted = false
		default:
			cur.WriteByte(c)
		}
	}
	if quoted || (cur.Len() == 0 && !wasQuoted) {
		return nil, invalidArg("invalid field path %q", p)
	}
	return append(segs, cur.String()), nil
}

func getField(fields map[string]*pb.Value, path []string) (*pb.Value, bool) {
	for i, s := range path {
		v, ok := fields[s]
		if !ok {
			return nil, false
		}
		if i == len(path)-1 {
			return v, true
		}
		m, ok := v.GetValueType().(*pb.Value_MapValue)
		if !ok {
			return nil, false
		}
		fields = m.MapValue.GetFields()
	}
	return nil, false
}

// setField sets path in fields, replacing non-map intermediates with maps.
// fields must be owned by the caller (not shared with stored documents).
func setField(fields map[string]*pb.Value, path []string, v *pb.Value) {
	for _, s := range path[:len(path)-1] {
		next, ok := fields[s].GetValueType().(*pb.Value_MapValue)
		if !ok {
			next = &pb.Value_MapValue{MapValue: &pb.MapValue{}}
			fields[s] = &pb.Value{ValueType: next}
		}
		if next.MapValue.Fields == nil {
			next.MapValue.Fields = map[string]*pb.Value{}
		}
		fields = next.MapValue.Fields
	}
	fields[path[len(path)-1]] = v
}

func deleteField(fields map[string]*pb.Value, path []string) {
	for _, s := range path[:len(path)-1] {
		next, ok := fields[s].GetValueType().(*pb.Value_MapValue)
		if !ok {
			return
		}
		fields = next.MapValue.GetFields()
	}
	delete(fields, path[len(path)-1])
}

// isPrefix reports whether a is a prefix of (or equal to) b.
func isPrefix(a, b []string) bool {
	if len(a) > len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
