/*
 * recognize.h: the pipeline's server side (recognize.c).
 */
#ifndef TRAINING_RECOGNIZE_H
#define TRAINING_RECOGNIZE_H

#endif
