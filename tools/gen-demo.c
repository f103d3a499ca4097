/*
 * gen-demo: generate a small folder-per-class face dataset (colour PPM images of
 * drawn faces), so that the demo needs no downloaded data.
 *
 *   gen-demo DIR CLASSES IMAGES [SEED [SIDE [grey]]]
 *
 * Writes DIR/person-K/N.ppm (SIDE x SIDE, default 128; N.pgm when "grey") for
 * K < CLASSES, N < IMAGES. A person's
 * face shape, skin, hair, eyes and mouth depend on K only; the pose (shift,
 * scale), lighting, expression and noise of an image depend on SEED and N, so
 * another SEED gives new images of the same people.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int SIDE = 128;
static int GREY = 0;

static uint64_t
next(uint64_t *s)
{
	uint64_t	z = (*s += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static double
uni(uint64_t *s, double lo, double hi)
{
	return lo + (hi - lo) * ((next(s) >> 11) * (1.0 / 9007199254740992.0));
}

typedef struct person
{
	double		face_w,
				face_h,
				eye_dx,
				eye_y,
				eye_r,
				brow,
				mouth_w,
				mouth_y,
				nose_len,
				hair;
	double		skin[3],
				hair_rgb[3],
				eye_rgb[3],
				bg[3];
} person;

static void
make_person(int k, person *p)
{
	uint64_t	s = 1000 + (uint64_t) k * 7919;

	p->face_w = uni(&s, 30, 44);
	p->face_h = uni(&s, 40, 54);
	p->eye_dx = uni(&s, 10, 18);
	p->eye_y = uni(&s, -14, -6);
	p->eye_r = uni(&s, 3, 6.5);
	p->brow = uni(&s, 4, 9);
	p->mouth_w = uni(&s, 8, 18);
	p->mouth_y = uni(&s, 14, 24);
	p->nose_len = uni(&s, 6, 14);
	p->hair = uni(&s, 0.15, 0.6);
	for (int c = 0; c < 3; c++)
	{
		p->skin[c] = uni(&s, 120, 230);
		p->hair_rgb[c] = uni(&s, 10, 120);
		p->eye_rgb[c] = uni(&s, 20, 110);
		p->bg[c] = uni(&s, 60, 200);
	}
}

static int
write_image(const char *path, const person *p, uint64_t seed)
{
	uint64_t	s = seed;
	double		cx = SIDE / 2 + uni(&s, -5, 5) * SIDE / 128.0,
				cy = SIDE / 2 + uni(&s, -4, 4) * SIDE / 128.0,
				sc = uni(&s, 0.92, 1.08) * SIDE / 128.0,
				light = uni(&s, -25, 25),
				smile = uni(&s, -3, 5),
				tilt = uni(&s, -0.08, 0.08);
	uint8_t    *px = malloc((size_t) SIDE * SIDE * 3);
	FILE	   *f;

	for (int y = 0; y < SIDE; y++)
		for (int x = 0; x < SIDE; x++)
		{
			/* Face coordinates: centred, scaled, slightly tilted. */
			double		dx = (x - cx) / sc,
						dy = (y - cy) / sc;
			double		u = dx * cos(tilt) + dy * sin(tilt),
						v = -dx * sin(tilt) + dy * cos(tilt);
			double		rgb[3];
			double		face = (u * u) / (p->face_w * p->face_w) + (v * v) / (p->face_h * p->face_h);

			for (int c = 0; c < 3; c++)
				rgb[c] = p->bg[c] * (0.8 + 0.4 * y / SIDE);
			if (face < 1.0)
			{
				for (int c = 0; c < 3; c++)
					rgb[c] = p->skin[c] * (1.0 - 0.25 * face);
				/* Hair: the top of the face. */
				if (v < -p->face_h * (1.0 - p->hair))
					for (int c = 0; c < 3; c++)
						rgb[c] = p->hair_rgb[c];
				/* Eyes and brows. */
				for (int side = -1; side <= 1; side += 2)
				{
					double		ex = u - side * p->eye_dx,
								ey = v - p->eye_y;

					if (ex * ex + ey * ey < p->eye_r * p->eye_r)
						for (int c = 0; c < 3; c++)
							rgb[c] = p->eye_rgb[c];
					if (ex * ex + ey * ey < 0.3 * p->eye_r * p->eye_r)
						for (int c = 0; c < 3; c++)
							rgb[c] = 15;
					if (fabs(ey + p->brow) < 1.2 && fabs(ex) < p->eye_r * 1.4)
						for (int c = 0; c < 3; c++)
							rgb[c] = p->hair_rgb[c] * 0.8;
				}
				/* Nose and mouth. */
				if (fabs(u) < 1.3 && v > p->eye_y + 2 && v < p->eye_y + 2 + p->nose_len)
					for (int c = 0; c < 3; c++)
						rgb[c] *= 0.7;
				if (fabs(u) < p->mouth_w &&
					fabs(v - (p->mouth_y + smile * (1 - (u * u) / (p->mouth_w * p->mouth_w)))) < 1.6)
				{
					rgb[0] = 150;
					rgb[1] = 40;
					rgb[2] = 50;
				}
			}
			for (int c = 0; c < 3; c++)
			{
				double		val = rgb[c] + light + uni(&s, -8, 8);

				px[(y * SIDE + x) * 3 + c] = (uint8_t) (val < 0 ? 0 : val > 255 ? 255 : val);
			}
		}
	f = fopen(path, "wb");
	if (f == NULL)
	{
		free(px);
		return -1;
	}
	if (GREY)
	{
		for (int i = 0; i < SIDE * SIDE; i++)
			px[i] = (uint8_t) ((77 * px[3 * i] + 150 * px[3 * i + 1] + 29 * px[3 * i + 2]) >> 8);
		fprintf(f, "P5\n%d %d\n255\n", SIDE, SIDE);
		fwrite(px, 1, (size_t) SIDE * SIDE, f);
	}
	else
	{
		fprintf(f, "P6\n%d %d\n255\n", SIDE, SIDE);
		fwrite(px, 1, (size_t) SIDE * SIDE * 3, f);
	}
	free(px);
	return fclose(f);
}

/* mkdir -p */
static void
make_dirs(const char *dir)
{
	char		buf[4096];

	snprintf(buf, sizeof(buf), "%s", dir);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/')
		{
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	mkdir(buf, 0755);
}

int
main(int argc, char **argv)
{
	int			classes,
				images;
	uint64_t	seed = 1;
	char		path[4096];

	if (argc < 4 || (classes = atoi(argv[2])) <= 0 || (images = atoi(argv[3])) <= 0)
	{
		fprintf(stderr, "usage: %s DIR CLASSES IMAGES [SEED [SIDE [grey]]]\n", argv[0]);
		return 2;
	}
	if (argc > 4)
		seed = strtoull(argv[4], NULL, 10);
	if (argc > 5 && (SIDE = atoi(argv[5])) < 16)
	{
		fprintf(stderr, "%s: SIDE must be at least 16\n", argv[0]);
		return 2;
	}
	GREY = argc > 6 && strcmp(argv[6], "grey") == 0;
	make_dirs(argv[1]);
	for (int k = 0; k < classes; k++)
	{
		person		p;

		make_person(k, &p);
		snprintf(path, sizeof(path), "%s/person-%d", argv[1], k + 1);
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
		{
			perror(path);
			return 1;
		}
		for (int n = 0; n < images; n++)
		{
			snprintf(path, sizeof(path), "%s/person-%d/%d.%s", argv[1], k + 1, n + 1, GREY ? "pgm" : "ppm");
			if (write_image(path, &p, seed * 1000003 + (uint64_t) k * 1009 + n) != 0)
			{
				perror(path);
				return 1;
			}
		}
	}
	fprintf(stderr, "generated %d classes x %d images in %s\n", classes, images, argv[1]);
	return 0;
}
