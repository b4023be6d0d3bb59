package k8sinventoryreceiver

import (
	"context"
	"fmt"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// listPageSize is how many objects one list request asks for when an informer lists the initial state.
const listPageSize = 500

// The informers list in pages and trim each page before asking for the next.
//
// Why: client-go's informers list the initial state in one piece when the API server does not stream it
// (watch-list needs the WatchList feature and an etcd that answers progress requests; a kube-apiserver before
// 1.32, one with the feature off, or one on etcd 3.4 falls back to a list). With resourceVersion "0" the watch
// cache ignores the page limit, so the reflector holds the whole response and every object decoded from it
// at once before the transform sees the first one: 10,000 pods made a 315 MB peak against 87 MB steady. A
// list that asks for pages of listPageSize at the latest resourceVersion (one consistent snapshot across the
// pages, as kubectl lists) and replaces each object by its cache entry right away holds one page of full
// objects at a time. Watch events still arrive one by one and go through the informer's transform.

// typedClient is what a typed client of one kind in one namespace offers (PodInterface and the like).
type typedClient[L runtime.Object] interface {
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// pagedInformer returns the factory's informer for example's kind, listing through c in trimmed pages.
// tweak is the factory's list option tweak (the namespace exclusion), which the factory applies only to the
// informers it builds itself; keep is the transform applied to each listed object (trim, or nil to keep the
// API objects: the memory benchmark's baseline). The factory sets its own transform on the informer for
// watch events; trim passes entries through, so listed objects are not trimmed twice.
func pagedInformer[L runtime.Object](f informers.SharedInformerFactory, client kubernetes.Interface, example runtime.Object,
	c typedClient[L], tweak func(*metav1.ListOptions), keep cache.TransformFunc) cache.SharedIndexInformer {
	return f.InformerFor(example, func(kubernetes.Interface, time.Duration) cache.SharedIndexInformer {
		lw := &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
				if tweak != nil {
					tweak(&opts)
				}
				return listInPages(ctx, opts, listPageSize, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
					return c.List(ctx, o)
				}, keep)
			},
			WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
				if tweak != nil {
					tweak(&opts)
				}
				return c.Watch(ctx, opts)
			},
		}
		return cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, client), example,
			cache.SharedIndexInformerOptions{ObjectDescription: fmt.Sprintf("%T", example)})
	})
}

// listInPages lists everything opts selects at the latest resourceVersion, in pages of pageSize, and
// returns one list of each object passed through keep (nil: kept as listed). The resourceVersion the caller
// asked for is replaced: the latest is never older than any it could ask for, and only a list at the latest
// (or an exact one) can be paged. An expired continue token (the snapshot was compacted away mid-list) is
// returned as the error it is; the reflector lists again.
func listInPages(ctx context.Context, opts metav1.ListOptions, pageSize int64,
	list func(context.Context, metav1.ListOptions) (runtime.Object, error), keep cache.TransformFunc) (*entryList, error) {
	opts.ResourceVersion, opts.ResourceVersionMatch, opts.Continue, opts.Limit = "", "", "", pageSize
	out := &entryList{}
	for {
		page, err := list(ctx, opts)
		if err != nil {
			return nil, err
		}
		lm, err := apimeta.ListAccessor(page)
		if err != nil {
			return nil, fmt.Errorf("reading the list metadata of a %T: %w", page, err)
		}
		err = apimeta.EachListItem(page, func(o runtime.Object) error {
			if keep == nil {
				out.Items = append(out.Items, o)
				return nil
			}
			e, err := keep(o)
			if err != nil {
				return err
			}
			ro, ok := e.(runtime.Object)
			if !ok {
				return fmt.Errorf("the transform made a %T of a %T, not a runtime.Object", e, o)
			}
			out.Items = append(out.Items, ro)
			return nil
		})
		if err != nil {
			return nil, err
		}
		out.ResourceVersion = lm.GetResourceVersion()
		if lm.GetContinue() == "" {
			return out, nil
		}
		opts.Continue = lm.GetContinue()
	}
}

// entryList is the list listInPages returns: cache entries (or API objects), with the resourceVersion the
// pages were listed at. The reflector reads only its items and its list metadata.
type entryList struct {
	metav1.TypeMeta
	metav1.ListMeta
	Items []runtime.Object
}

func (l *entryList) DeepCopyObject() runtime.Object {
	c := &entryList{TypeMeta: l.TypeMeta, ListMeta: *l.ListMeta.DeepCopy(), Items: make([]runtime.Object, len(l.Items))}
	for i, o := range l.Items {
		c.Items[i] = o.DeepCopyObject()
	}
	return c
}

// Cache entries are runtime.Objects so a list can hold them. They are never modified once built, so a copy is
// the entry itself.

func (e *podEntry) GetObjectKind() schema.ObjectKind      { return schema.EmptyObjectKind }
func (e *podEntry) DeepCopyObject() runtime.Object        { return e }
func (e *nodeEntry) GetObjectKind() schema.ObjectKind     { return schema.EmptyObjectKind }
func (e *nodeEntry) DeepCopyObject() runtime.Object       { return e }
func (e *workloadEntry) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }
func (e *workloadEntry) DeepCopyObject() runtime.Object   { return e }
