package service

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/leadpipe/leadpipe/common/mapping"
	"github.com/leadpipe/leadpipe/common/store"
	"github.com/leadpipe/leadpipe/ingest/internal/signature"
)

// TestOversizedBodyWrittenWholeGets413 is a raw TCP client that writes its whole request
// (headers and a body over MAX_BODY_BYTES) before reading: it must read a 413, with and
// without a Content-Length that announces the size, not a connection reset.
func TestOversizedBodyWrittenWholeGets413(t *testing.T) {
	f := newFixture(t, map[string]string{"MAX_BODY_BYTES": "65536"})
	u, _ := url.Parse(f.url)
	body := bytes.Repeat([]byte("x"), 24<<20) // more than socket buffers hold
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			conn, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
			var req bytes.Buffer
			fmt.Fprintf(&req, "POST /v1/webhooks/demo HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n", u.Host)
			if chunked {
				fmt.Fprintf(&req, "Transfer-Encoding: chunked\r\n\r\n")
				for off := 0; off < len(body); off += 1 << 16 {
					end := min(off+1<<16, len(body))
					fmt.Fprintf(&req, "%x\r\n%s\r\n", end-off, body[off:end])
				}
				req.WriteString("0\r\n\r\n")
			} else {
				fmt.Fprintf(&req, "Content-Length: %d\r\n\r\n", len(body))
				req.Write(body)
			}
			if _, err := conn.Write(req.Bytes()); err != nil {
				t.Fatalf("writing the whole request: %v", err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("status %d, want 413", resp.StatusCode)
			}
		})
	}
}

// TestMetaPostWithOneMalformedChangeKeepsTheOthers: the valid leads are accepted and
// published; only the bad change is stored quarantined (keyed by delivery and index) and sent
// to the DLQ.
func TestMetaPostWithOneMalformedChangeKeepsTheOthers(t *testing.T) {
	f := newFixture(t, nil)
	run := fmt.Sprint(time.Now().UnixNano())
	body := []byte(`{"object":"page","entry":[{"id":"1","time":1764496800,"changes":[
	 {"field":"leadgen","value":{"leadgen_id":"` + run + `-1","created_time":1764496800}},
	 {"field":"leadgen","value":{"leadgen_id":["not","an","id"]}},
	 {"field":"leadgen","value":{"leadgen_id":"` + run + `-3","created_time":1764496800}}]}]}`)
	req, _ := http.NewRequest(http.MethodPost, f.url+"/v1/webhooks/meta", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", signature.SignMeta(metaSecret, body))
	a := f.do(req)
	if a.code != http.StatusAccepted || a.body["status"] != "accepted" {
		t.Fatalf("answer = %d %v, want 202 accepted", a.code, a.body)
	}
	evs, _ := a.body["events"].([]any)
	if len(evs) != 3 {
		t.Fatalf("answer events = %v, want 3", a.body["events"])
	}
	if e := evs[1].(map[string]any); e["status"] != "quarantined" || e["reason"] != "schema_mismatch" {
		t.Errorf("answer for the bad change = %v, want quarantined schema_mismatch", e)
	}
	for _, n := range []string{"1", "3"} {
		key := "meta|lead.created|" + run + "-" + n
		doc := f.eventDoc(key)
		if doc == nil || doc.State != store.StateReceived {
			t.Errorf("%s: %+v, want received", key, doc)
			continue
		}
		if got := len(messages("leads", key)); got != 1 {
			t.Errorf("%s published %d times, want 1", key, got)
		}
	}
	badKey := mapping.ItemKey("meta", body, 1)
	doc := f.eventDoc(badKey)
	if doc == nil || doc.State != store.StateQuarantined || doc.QuarantinedBy != "ingest" {
		t.Fatalf("bad change %s: %+v, want quarantined by ingest", badKey, doc)
	}
	if got := len(messages("leads-dlq", badKey)); got != 1 {
		t.Errorf("bad change sent to the DLQ %d times, want 1", got)
	}
	if len(messages("leads", badKey)) != 0 {
		t.Error("bad change published to leads")
	}
	if got := len(messages("leads-dlq", mapping.UnknownKey("meta", body))); got != 0 {
		t.Errorf("the whole body was quarantined too (%d DLQ messages)", got)
	}
}

// TestOverlongIdentifierIsQuarantinedAtIntake: an external id too long for the CRM (its
// ordering key near Pub/Sub's 1 KB limit) is quarantined with a schema reason at once, never
// accepted into the outbox.
func TestOverlongIdentifierIsQuarantinedAtIntake(t *testing.T) {
	f := newFixture(t, nil)
	l := newLead(t)
	l.body = []byte(`{"event_type":"lead.created","occurred_at":"2026-11-30T10:00:00Z","identity":{"contact_external_id":"` +
		strings.Repeat("c", 1100) + `"}}`)
	a := f.do(f.request(l))
	if a.code != http.StatusAccepted || a.body["status"] != "quarantined" || a.body["reason"] != "schema_mismatch" {
		t.Fatalf("answer = %d %v, want 202 quarantined schema_mismatch", a.code, a.body)
	}
	doc := f.eventDoc(l.key())
	if doc == nil || doc.State != store.StateQuarantined || doc.QuarantinedBy != "ingest" {
		t.Fatalf("doc = %+v, want quarantined by ingest (never received into the leads outbox)", doc)
	}
	if got := len(messages("leads-dlq", l.key())); got != 1 {
		t.Errorf("%d DLQ messages, want 1", got)
	}
}
