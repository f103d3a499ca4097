/*
 * recognize.h: the pipeline's server side (recognize.c).
 */
#ifndef TRAINING_RECOGNIZE_H
#define TRAINING_RECOGNIZE_H

/* training.max_image_pixels */
extern int	tr_max_image_pixels;

/* Define the pipeline's GUCs (_PG_init). */
extern void tr_pipeline_init(void);

#endif
