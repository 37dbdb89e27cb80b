package firestoreemu

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func statusProto(err error) *spb.Status {
	if err == nil {
		return &spb.Status{}
	}
	return status.Convert(err).Proto()
}

func (r *rpcServer) RunQuery(req *pb.RunQueryRequest, stream pb.Firestore_RunQueryServer) error {
	if req.GetExplainOptions() != nil {
		return invalidArg("explain_options are not supported by this emulator")
	}
	q, err := compileQuery(req.GetParent(), req.GetStructuredQuery())
	if err != nil {
		return err
	}
	rc, err := r.s.openRead(q.db, req.GetTransaction(), req.GetNewTransaction(), req.GetReadTime())
	if err != nil {
		return err
	}
	var docs []*pb.Document
	readTime := r.s.read(rc, func(snap time.Time) {
		docs = q.runLocked(r.s.store, snap)
		rc.recordQuery(q, docs)
	})
	rt := timestamppb.New(readTime)
	if len(docs) == 0 {
		return stream.Send(&pb.RunQueryResponse{Transaction: rc.newID, ReadTime: rt})
	}
	for i, d := range docs {
		resp := &pb.RunQueryResponse{Document: q.projectDoc(d), ReadTime: rt}
		if i == 0 {
			resp.Transaction = rc.newID
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

func (r *rpcServer) RunAggregationQuery(req *pb.RunAggregationQueryRequest, stream pb.Firestore_RunAggregationQueryServer) error {
	if req.GetExplainOptions() != nil {
		return invalidArg("explain_options are not supported by this emulator")
	}
	saq := req.GetStructuredAggregationQuery()
	q, err := compileQuery(req.GetParent(), saq.GetStructuredQuery())
	if err != nil {
		return err
	}
	aggs := saq.GetAggregations()
	if len(aggs) == 0 || len(aggs) > 5 {
		return invalidArg("an aggregation query needs 1 to 5 aggregations")
	}
	paths := make([][]string, len(aggs))
	aliases := map[string]bool{}
	for i, a := range aggs {
		var ref *pb.StructuredQuery_FieldReference
		switch {
		case a.GetSum() != nil:
			ref = a.GetSum().GetField()
		case a.GetAvg() != nil:
			ref = a.GetAvg().GetField()
		case a.GetCount() != nil:
			if u := a.GetCount().GetUpTo(); u != nil && u.GetValue() <= 0 {
				return invalidArg("up_to must be positive")
			}
		default:
			return invalidArg("aggregation has no operator")
		}
		if ref != nil {
			if paths[i], err = parseFieldPath(ref.GetFieldPath()); err != nil {
				return err
			}
		}
		alias := aggAlias(a, i)
		if aliases[alias] {
			return invalidArg("duplicate aggregation alias %q", alias)
		}
		aliases[alias] = true
	}
	rc, err := r.s.openRead(q.db, req.GetTransaction(), req.GetNewTransaction(), req.GetReadTime())
	if err != nil {
		return err
	}
	var docs []*pb.Document
	readTime := r.s.read(rc, func(snap time.Time) {
		docs = q.runLocked(r.s.store, snap)
		rc.recordQuery(q, docs)
	})
	fields := map[string]*pb.Value{}
	for i, a := range aggs {
		fields[aggAlias(a, i)] = aggregate(a, paths[i], docs)
	}
	return stream.Send(&pb.RunAggregationQueryResponse{
		Result:      &pb.AggregationResult{AggregateFields: fields},
		Transaction: rc.newID,
		ReadTime:    timestamppb.New(readTime),
	})
}

func aggAlias(a *pb.StructuredAggregationQuery_Aggregation, i int) string {
	if a.GetAlias() != "" {
		return a.GetAlias()
	}
	return fmt.Sprintf("field_%d", i+1)
}

func aggregate(a *pb.StructuredAggregationQuery_Aggregation, path []string, docs []*pb.Document) *pb.Value {
	if c := a.GetCount(); c != nil {
		n := int64(len(docs))
		if u := c.GetUpTo(); u != nil {
			n = min(n, u.GetValue())
		}
		return intValue(n)
	}
	var isum int64
	var fsum float64
	count, floats, overflow := 0, false, false
	for _, d := range docs {
		v, ok := getField(d.Fields, path)
		if !ok || !isNumber(v) {
			continue
		}
		count++
		if i, ok := v.GetValueType().(*pb.Value_IntegerValue); ok && !floats && !overflow {
			s := isum + i.IntegerValue
			if (i.IntegerValue > 0 && s < isum) || (i.IntegerValue < 0 && s > isum) {
				overflow = true
			}
			isum = s
		} else if !floats && !overflow {
			floats = true
		}
		fsum += asFloat(v)
	}
	if a.GetAvg() != nil {
		if count == 0 {
			return nullValue()
		}
		return doubleValue(fsum / float64(count))
	}
	if floats || overflow {
		return doubleValue(fsum)
	}
	return intValue(isum)
}

func (r *rpcServer) ListDocuments(_ context.Context, req *pb.ListDocumentsRequest) (*pb.ListDocumentsResponse, error) {
	db, parent, err := parseParent(req.GetParent())
	if err != nil {
		return nil, err
	}
	if err := checkMask(req.GetMask()); err != nil {
		return nil, err
	}
	rc, err := r.s.openRead(db, req.GetTransaction(), nil, req.GetReadTime())
	if err != nil {
		return nil, err
	}
	coll := req.GetCollectionId()
	var docs []*pb.Document
	r.s.read(rc, func(snap time.Time) {
		d := r.s.store.dbLocked(db)
		if d == nil {
			return
		}
		missing := map[string]bool{}
		for full, e := range d.docs {
			rest, ok := strings.CutPrefix(full, parent+"/")
			if !ok {
				continue
			}
			segs := strings.Split(rest, "/")
			if coll != "" && segs[0] != coll {
				continue
			}
			doc := e.at(snap)
			if doc == nil {
				continue
			}
			if len(segs) == 2 {
				docs = append(docs, doc)
				rc.recordDoc(full, doc)
			} else if req.GetShowMissing() {
				missing[parent+"/"+segs[0]+"/"+segs[1]] = true
			}
		}
		for name := range missing {
			if e := d.docs[name]; e == nil || e.at(snap) == nil {
				docs = append(docs, &pb.Document{Name: name})
			}
		}
	})
	slices.SortFunc(docs, func(a, b *pb.Document) int { return compareReferences(a.Name, b.Name) })
	start, end, next, err := page(len(docs), req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &pb.ListDocumentsResponse{NextPageToken: next}
	for _, d := range docs[start:end] {
		if d.CreateTime != nil {
			d, _ = applyMask(d, req.GetMask())
		}
		out.Documents = append(out.Documents, d)
	}
	return out, nil
}

// page slices n results by a page size and an opaque offset token.
func page(n int, size int32, token string) (start, end int, next string, err error) {
	if token != "" {
		if start, err = strconv.Atoi(token); err != nil || start < 0 || start > n {
			return 0, 0, "", invalidArg("invalid page token")
		}
	}
	end = n
	if size > 0 && start+int(size) < n {
		end = start + int(size)
		next = strconv.Itoa(end)
	}
	return start, end, next, nil
}

func (r *rpcServer) ListCollectionIds(_ context.Context, req *pb.ListCollectionIdsRequest) (*pb.ListCollectionIdsResponse, error) {
	db, parent, err := parseParent(req.GetParent())
	if err != nil {
		return nil, err
	}
	rc, err := r.s.openRead(db, nil, nil, req.GetReadTime())
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	r.s.read(rc, func(snap time.Time) {
		d := r.s.store.dbLocked(db)
		if d == nil {
			return
		}
		for full, e := range d.docs {
			if rest, ok := strings.CutPrefix(full, parent+"/"); ok && e.at(snap) != nil {
				id, _, _ := strings.Cut(rest, "/")
				set[id] = true
			}
		}
	})
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	start, end, next, err := page(len(ids), req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &pb.ListCollectionIdsResponse{CollectionIds: ids[start:end], NextPageToken: next}, nil
}

const autoIDChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func autoID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = autoIDChars[int(b[i])%len(autoIDChars)]
	}
	return string(b[:])
}

// commitOne commits a single write and returns the resulting document.
func (s *Server) commitOne(w *pb.Write, mask *pb.DocumentMask) (*pb.Document, error) {
	if err := checkMask(mask); err != nil {
		return nil, err
	}
	pw, err := prepareWrite(w)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.commit(pw.name.db, []*preparedWrite{pw}, nil); err != nil {
		return nil, err
	}
	s.store.mu.RLock()
	doc := s.store.getLocked(pw.name.db, pw.full, time.Time{})
	s.store.mu.RUnlock()
	if doc == nil {
		return nil, notFound("Document %q not found.", pw.full)
	}
	return applyMask(doc, mask)
}

func (r *rpcServer) CreateDocument(_ context.Context, req *pb.CreateDocumentRequest) (*pb.Document, error) {
	if _, _, err := parseParent(req.GetParent()); err != nil {
		return nil, err
	}
	id := req.GetDocumentId()
	if id == "" {
		id = autoID()
	}
	if req.GetCollectionId() == "" || strings.Contains(id, "/") || strings.Contains(req.GetCollectionId(), "/") {
		return nil, invalidArg("invalid collection or document id")
	}
	doc := &pb.Document{Name: req.GetParent() + "/" + req.GetCollectionId() + "/" + id, Fields: req.GetDocument().GetFields()}
	return r.s.commitOne(&pb.Write{
		Operation:       &pb.Write_Update{Update: doc},
		CurrentDocument: &pb.Precondition{ConditionType: &pb.Precondition_Exists{Exists: false}},
	}, req.GetMask())
}

func (r *rpcServer) UpdateDocument(_ context.Context, req *pb.UpdateDocumentRequest) (*pb.Document, error) {
	return r.s.commitOne(&pb.Write{
		Operation:       &pb.Write_Update{Update: req.GetDocument()},
		UpdateMask:      req.GetUpdateMask(),
		CurrentDocument: req.GetCurrentDocument(),
	}, req.GetMask())
}

func (r *rpcServer) DeleteDocument(_ context.Context, req *pb.DeleteDocumentRequest) (*emptypb.Empty, error) {
	pw, err := prepareWrite(&pb.Write{
		Operation:       &pb.Write_Delete{Delete: req.GetName()},
		CurrentDocument: req.GetCurrentDocument(),
	})
	if err != nil {
		return nil, err
	}
	if _, err := r.s.store.commit(pw.name.db, []*preparedWrite{pw}, nil); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
