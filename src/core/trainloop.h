/*
 * trainloop.h: the classifier and its training loop (mini-batch gradient descent,
 * matrix work in cblas_sgemm).
 *
 * The network: x (feature, dim d) -> z = W1 (x - mean) (dim e; W1 absent when
 * e = 0, then z = x - mean) -> u = z / |z| (the normalised embedding) -> logits
 * s * cos(u, w_c) with w_c the rows of W2 (c x E, E = e or d). Softmax
 * cross-entropy, weight decay on W1, Adam. The class weights are the class
 * centres of the embedding space: distance(x, c) = |u - w_c/|w_c|| in 0..2,
 * and the smallest distance is the highest score.
 * Pure C, no PostgreSQL headers.
 */
#ifndef TRAINING_TRAINLOOP_H
#define TRAINING_TRAINLOOP_H

#include <stddef.h>
#include <stdint.h>

typedef struct tr_net
{
	int			d;				/* feature dimension */
	int			e;				/* projection dimension, 0 = none */
	int			c;				/* classes */
	float		s;				/* logit scale */
	float	   *mean;			/* d */
	float	   *W1;				/* e x d, row-major, or NULL */
	float	   *W2;				/* c x E, row-major (not normalised) */
} tr_net;

#define TR_NET_EDIM(net) ((net)->e > 0 ? (net)->e : (net)->d)

typedef struct tr_fit_params
{
	int			embed_dim;		/* e */
	float		scale;			/* s */
	float		lr;				/* Adam step */
	float		weight_decay;	/* on W1 */
	int			batch;
	int			max_epochs;
	int			min_epochs;
	int			patience;		/* epochs without validation improvement before stopping */
	float		val_fraction;	/* per class, rounded down */
	int			refit;			/* after early stopping, retrain on all data for the best epoch count */
	int			pca_init;		/* W1 starts as the top principal directions (else random) */
	float		whiten;			/* with pca_init: scale direction i by (variance_i + eps)^-whiten */
	int			train_projection;	/* also train W1 by gradient descent (else it stays as initialised) */
	int			lda;			/* with pca_init: rotate onto the linear discriminant directions */
	/*
	 * sgemm work the epochs of both phases may take, in GFLOP (0: no limit): a large set gets
	 * fewer epochs (down to none: the network as initialised, class centres of the embedding).
	 */
	double		max_gflop;
	uint64_t	seed;
} tr_fit_params;

void		tr_fit_params_default(tr_fit_params *p);

/* train_accuracy is measured on at most this many training rows (evenly spread). */
#define TR_TRAIN_ACCURACY_ROWS 20000

typedef struct tr_fit_report
{
	double		train_accuracy;
	double		validation_accuracy;	/* -1 when no validation split was possible */
	int			validation_images;
	int			epochs;			/* epochs of the returned network */
	int			epochs_run;		/* all epochs, both phases */
	double		gflop;			/* sgemm work done */
	double		seconds;		/* time in the loop */
} tr_fit_report;

/*
 * Called after every epoch (epoch 1..max_epochs), and with epoch 0 before and after the
 * initialisation of each phase (principal directions: long on large sets, so a caller
 * can check for cancel there too); phase 0 = with validation split, 1 = refit on all data.
 * Returns 0 to go on, nonzero to stop the training (tr_fit then returns TR_STOPPED).
 */
typedef int (*tr_epoch_fn) (void *ctx, int phase, int epoch, int max_epochs, double loss, double val_acc);

/*
 * Train a network on n rows of X (n x d, row-major) with labels y (0..c-1).
 * Deterministic for params->seed. Returns 0, or -1 with a message in err, or TR_CANCELED
 * (interrupt.h) when a cancel request stopped it, or TR_STOPPED when cb said stop; the network
 * is then freed.
 */
int			tr_fit(const float *X, const int *y, int n, int d, int c, const tr_fit_params *params,
				   tr_net *net, tr_fit_report *report, tr_epoch_fn cb, void *ctx,
				   char *err, size_t errlen);

/*
 * The top k principal directions of the rows idx (n of them) of X (nall x d),
 * centred by mean: dirs (k x d, orthonormal rows) and variances (k), by
 * randomized subspace iteration on cblas_sgemm (no copy of X). Returns the
 * number of directions found (<= k), or -1 when out of memory.
 */
int			tr_pca(const float *X, int nall, int d, const int *idx, int n, const float *mean,
				   int k, uint64_t seed, float *dirs, double *variances);

/* Allocate a network with zeroed parameters; -1 if out of memory. */
int			tr_net_alloc(tr_net *net, int d, int e, int c, float s);
void		tr_net_free(tr_net *net);

/* Normalised embeddings U (n x E) of X (n x d). */
void		tr_net_embed(const tr_net *net, const float *X, int n, float *U);

/* Cosines (n x c) between embeddings U and the normalised class weights. */
void		tr_net_cosines(const tr_net *net, const float *U, int n, float *cos);

/*
 * Mean cross-entropy loss (+ weight decay) of the batch, and, if gW1/gW2 are
 * not NULL, its gradients with respect to W1 (e x d) and W2 (c x E).
 * Exposed for the gradient check.
 */
double		tr_net_loss_grad(const tr_net *net, const float *X, const int *y, int n,
							 float weight_decay, float *gW1, float *gW2);

#endif
