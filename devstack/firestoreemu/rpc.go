package firestoreemu

import (
	"context"
	"time"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// rpcServer implements the Firestore gRPC service; methods it does not
// override (Listen, Write, PartitionQuery, ExecutePipeline) answer
// UNIMPLEMENTED.
type rpcServer struct {
	pb.UnimplementedFirestoreServer
	s *Server
}

var _ pb.FirestoreServer = (*rpcServer)(nil)

// readCtx is the consistency a read runs at.
type readCtx struct {
	t     *txn      // nil: not in a transaction
	snap  time.Time // zero: latest (only when t == nil)
	newID []byte    // the id of a transaction this request began
}

// openRead resolves a request's consistency selector.
func (s *Server) openRead(db string, txID []byte, newTx *pb.TransactionOptions, rt *timestamppb.Timestamp) (*readCtx, error) {
	switch {
	case txID != nil:
		t, err := s.txns.get(txID, db)
		if err != nil {
			return nil, err
		}
		return &readCtx{t: t}, nil
	case newTx != nil:
		t, err := s.beginTxn(db, newTx)
		if err != nil {
			return nil, err
		}
		return &readCtx{t: t, newID: []byte(t.id)}, nil
	case rt != nil:
		if err := rt.CheckValid(); err != nil {
			return nil, invalidArg("invalid read_time: %v", err)
		}
		return &readCtx{snap: rt.AsTime()}, nil
	}
	return &readCtx{}, nil
}

// read runs fn under the store's shared lock at the right snapshot and
// returns the read time to report. In a read-write transaction fn also runs
// under the transaction's lock, so it may record what it read.
func (s *Server) read(rc *readCtx, fn func(snap time.Time)) time.Time {
	if rc.t != nil {
		rc.t.mu.Lock()
		defer rc.t.mu.Unlock()
	}
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	snap := rc.snap
	if rc.t != nil {
		snap = rc.t.snapshotLocked(s.store)
	}
	fn(snap)
	if snap.IsZero() {
		return s.store.readTimeLocked()
	}
	return snap
}

func (rc *readCtx) recordDoc(full string, doc *pb.Document) {
	if rc.t != nil && !rc.t.readOnly {
		if _, ok := rc.t.reads[full]; !ok {
			rc.t.reads[full] = doc
		}
	}
}

func (rc *readCtx) recordQuery(q *compiledQuery, docs []*pb.Document) {
	if rc.t != nil && !rc.t.readOnly {
		rc.t.queries = append(rc.t.queries, queryRead{q: q, docs: docs})
	}
}

func (s *Server) beginTxn(db string, o *pb.TransactionOptions) (*txn, error) {
	if ro := o.GetReadOnly(); ro != nil {
		var snap time.Time
		if rt := ro.GetReadTime(); rt != nil {
			if err := rt.CheckValid(); err != nil {
				return nil, invalidArg("invalid read_time: %v", err)
			}
			snap = rt.AsTime()
		} else {
			s.store.mu.RLock()
			snap = s.store.snapshotLocked()
			s.store.mu.RUnlock()
		}
		return s.txns.begin(db, true, snap, nil), nil
	}
	return s.txns.begin(db, false, time.Time{}, o.GetReadWrite().GetRetryTransaction()), nil
}

// applyMask keeps only the mask's fields of doc (nil mask: all).
func applyMask(doc *pb.Document, mask *pb.DocumentMask) (*pb.Document, error) {
	if mask == nil || doc == nil {
		return doc, nil
	}
	q := &compiledQuery{project: true}
	for _, p := range mask.GetFieldPaths() {
		segs, err := parseFieldPath(p)
		if err != nil {
			return nil, err
		}
		q.projection = append(q.projection, segs)
	}
	return q.projectDoc(doc), nil
}

func checkMask(mask *pb.DocumentMask) error {
	for _, p := range mask.GetFieldPaths() {
		if _, err := parseFieldPath(p); err != nil {
			return err
		}
	}
	return nil
}

func (r *rpcServer) GetDocument(_ context.Context, req *pb.GetDocumentRequest) (*pb.Document, error) {
	n, err := parseDocName(req.GetName())
	if err != nil {
		return nil, err
	}
	if err := checkMask(req.GetMask()); err != nil {
		return nil, err
	}
	rc, err := r.s.openRead(n.db, req.GetTransaction(), nil, req.GetReadTime())
	if err != nil {
		return nil, err
	}
	full := n.full()
	var doc *pb.Document
	r.s.read(rc, func(snap time.Time) {
		doc = r.s.store.getLocked(n.db, full, snap)
		rc.recordDoc(full, doc)
	})
	if doc == nil {
		return nil, notFound("Document %q not found.", full)
	}
	return applyMask(doc, req.GetMask())
}

func (r *rpcServer) BatchGetDocuments(req *pb.BatchGetDocumentsRequest, stream pb.Firestore_BatchGetDocumentsServer) error {
	db := req.GetDatabase()
	if _, _, err := splitDB(db + "/documents"); err != nil {
		return err
	}
	names := make([]string, len(req.GetDocuments()))
	for i, name := range req.GetDocuments() {
		n, err := parseDocName(name)
		if err != nil {
			return err
		}
		if n.db != db {
			return invalidArg("document %q is not in database %q", name, db)
		}
		names[i] = n.full()
	}
	if err := checkMask(req.GetMask()); err != nil {
		return err
	}
	rc, err := r.s.openRead(db, req.GetTransaction(), req.GetNewTransaction(), req.GetReadTime())
	if err != nil {
		return err
	}
	docs := make([]*pb.Document, len(names))
	readTime := r.s.read(rc, func(snap time.Time) {
		for i, full := range names {
			docs[i] = r.s.store.getLocked(db, full, snap)
			rc.recordDoc(full, docs[i])
		}
	})
	rt := timestamppb.New(readTime)
	for i, full := range names {
		resp := &pb.BatchGetDocumentsResponse{ReadTime: rt}
		if i == 0 {
			resp.Transaction = rc.newID
		}
		if docs[i] == nil {
			resp.Result = &pb.BatchGetDocumentsResponse_Missing{Missing: full}
		} else {
			d, _ := applyMask(docs[i], req.GetMask())
			resp.Result = &pb.BatchGetDocumentsResponse_Found{Found: d}
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	if len(names) == 0 && rc.newID != nil {
		return stream.Send(&pb.BatchGetDocumentsResponse{Transaction: rc.newID, ReadTime: rt})
	}
	return nil
}

func (r *rpcServer) BeginTransaction(_ context.Context, req *pb.BeginTransactionRequest) (*pb.BeginTransactionResponse, error) {
	db := req.GetDatabase()
	if _, _, err := splitDB(db + "/documents"); err != nil {
		return nil, err
	}
	opts := req.GetOptions()
	if opts == nil {
		opts = &pb.TransactionOptions{}
	}
	t, err := r.s.beginTxn(db, opts)
	if err != nil {
		return nil, err
	}
	return &pb.BeginTransactionResponse{Transaction: []byte(t.id)}, nil
}

func (r *rpcServer) Rollback(_ context.Context, req *pb.RollbackRequest) (*emptypb.Empty, error) {
	if _, err := r.s.txns.take(req.GetTransaction(), req.GetDatabase()); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

func (r *rpcServer) Commit(_ context.Context, req *pb.CommitRequest) (*pb.CommitResponse, error) {
	db := req.GetDatabase()
	if _, _, err := splitDB(db + "/documents"); err != nil {
		return nil, err
	}
	writes, err := prepareWrites(db, req.GetWrites())
	if err != nil {
		return nil, err
	}
	res, err := r.s.commit(db, req.GetTransaction(), writes)
	if err != nil {
		return nil, err
	}
	return &pb.CommitResponse{WriteResults: res.results, CommitTime: timestamppb.New(res.at)}, nil
}

// commit applies writes, inside transaction txID if it is non-nil.
func (s *Server) commit(db string, txID []byte, writes []*preparedWrite) (commitResult, error) {
	if txID == nil {
		return s.store.commit(db, writes, nil)
	}
	t, err := s.txns.take(txID, db)
	if err != nil {
		return commitResult{}, err
	}
	if t.readOnly && len(writes) > 0 {
		return commitResult{}, invalidArg("Cannot modify entities in a read-only transaction.")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return s.store.commit(db, writes, func() error { return t.validateLocked(s.store) })
}

func (r *rpcServer) BatchWrite(_ context.Context, req *pb.BatchWriteRequest) (*pb.BatchWriteResponse, error) {
	db := req.GetDatabase()
	if _, _, err := splitDB(db + "/documents"); err != nil {
		return nil, err
	}
	writes, err := prepareWrites(db, req.GetWrites())
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, w := range writes {
		if seen[w.full] {
			return nil, invalidArg("BatchWrite may not write document %q more than once", w.full)
		}
		seen[w.full] = true
	}
	resp := &pb.BatchWriteResponse{}
	for _, w := range writes {
		res, err := r.s.store.commit(db, []*preparedWrite{w}, nil)
		if err != nil {
			resp.WriteResults = append(resp.WriteResults, &pb.WriteResult{})
			resp.Status = append(resp.Status, statusProto(err))
			continue
		}
		resp.WriteResults = append(resp.WriteResults, res.results[0])
		resp.Status = append(resp.Status, statusProto(nil))
	}
	return resp, nil
}
