package pubsubemu

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// pushEnvelope is the JSON body Pub/Sub POSTs to a push endpoint. The
// message id and publish time are sent under both spellings, as Pub/Sub
// does.
type pushEnvelope struct {
	Message         pushMessage `json:"message"`
	Subscription    string      `json:"subscription"`
	DeliveryAttempt *int32      `json:"deliveryAttempt,omitempty"`
}

type pushMessage struct {
	Data         string            `json:"data,omitempty"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	MessageID    string            `json:"messageId,omitempty"`
	MessageIDOld string            `json:"message_id,omitempty"`
	PublishTime  string            `json:"publishTime,omitempty"`
	PublishOld   string            `json:"publish_time,omitempty"`
	OrderingKey  string            `json:"orderingKey,omitempty"`
}

// pushRequest is everything one push needs, built before it starts so the
// push goroutine shares nothing with the worker.
type pushRequest struct {
	endpoint string
	body     []byte
	header   http.Header
}

// newPushRequest builds the push of msg for its attempt-th delivery to
// cfg. deliveryAttempt is sent only with a dead-letter policy, as Pub/Sub
// does. With the no_wrapper push config the body is the bare data and,
// with write_metadata, the attributes and ids travel as headers.
func newPushRequest(cfg *pb.Subscription, msg *pb.PubsubMessage, attempt int32) pushRequest {
	pc := cfg.GetPushConfig()
	pt := ""
	if msg.GetPublishTime() != nil {
		pt = msg.GetPublishTime().AsTime().UTC().Format(time.RFC3339Nano)
	}
	h := http.Header{}
	h.Set("User-Agent", "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)")
	if nw := pc.GetNoWrapper(); nw != nil {
		h.Set("Content-Type", "application/octet-stream")
		if nw.GetWriteMetadata() {
			for k, v := range msg.GetAttributes() {
				h.Set(k, v)
			}
			h.Set("x-goog-pubsub-subscription-name", cfg.GetName())
			h.Set("x-goog-pubsub-message-id", msg.GetMessageId())
			h.Set("x-goog-pubsub-publish-time", pt)
		}
		return pushRequest{endpoint: pc.GetPushEndpoint(), body: msg.GetData(), header: h}
	}
	env := pushEnvelope{
		Message: pushMessage{
			Attributes:   msg.GetAttributes(),
			MessageID:    msg.GetMessageId(),
			MessageIDOld: msg.GetMessageId(),
			PublishTime:  pt,
			PublishOld:   pt,
			OrderingKey:  msg.GetOrderingKey(),
		},
		Subscription: cfg.GetName(),
	}
	if len(msg.GetData()) > 0 {
		env.Message.Data = base64.StdEncoding.EncodeToString(msg.GetData())
	}
	if cfg.GetDeadLetterPolicy() != nil {
		env.DeliveryAttempt = &attempt
	}
	body, _ := json.Marshal(env) // strings and a string map: cannot fail
	h.Set("Content-Type", "application/json")
	return pushRequest{endpoint: pc.GetPushEndpoint(), body: body, header: h}
}

// pushResult is the outcome of one push.
type pushResult struct {
	id     string // message id
	status int    // 0 when no answer came
	err    error  // connection error or timeout
}

// acked reports whether Pub/Sub would take the answer as an ack.
func (r pushResult) acked() bool {
	if r.err != nil {
		return false
	}
	switch r.status {
	case http.StatusProcessing, http.StatusOK, http.StatusCreated, http.StatusAccepted, http.StatusNoContent:
		return true
	}
	return false
}

// push POSTs req and waits at most timeout for the status line. ctx ends
// at Close or when the subscription is deleted.
func (s *Server) push(ctx context.Context, req pushRequest, timeout time.Duration) pushResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, req.endpoint, bytes.NewReader(req.body))
	if err != nil {
		return pushResult{err: err}
	}
	hr.Header = req.header
	resp, err := s.opts.HTTPClient.Do(hr)
	if err != nil {
		return pushResult{err: err}
	}
	// Drain a little so the connection can be reused; the answer's body
	// means nothing to Pub/Sub.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return pushResult{status: resp.StatusCode}
}
